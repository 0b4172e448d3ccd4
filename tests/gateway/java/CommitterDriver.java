import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.mapreduce.JobContext;
import org.apache.hadoop.mapreduce.JobID;
import org.apache.hadoop.mapreduce.JobStatus;
import org.apache.hadoop.mapreduce.TaskAttemptContext;
import org.apache.hadoop.mapreduce.TaskAttemptID;
import org.apache.hadoop.mapreduce.TaskID;
import org.apache.hadoop.mapreduce.TaskType;
import org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter;
import org.apache.hadoop.mapreduce.task.JobContextImpl;
import org.apache.hadoop.mapreduce.task.TaskAttemptContextImpl;

/**
 * Drives Hadoop's FileOutputCommitter (algorithm v1) the way a cluster does:
 * tasks write and commit through one node's gateway, the driver sets up and
 * commits (or aborts) the job through another's. Both URLs name the same output
 * directory; each side's committer is built on its own URL form of it.
 *
 * Usage: CommitterDriver TASK_URL JOB_URL TASKS ACTION...
 *
 *   setupJob          job side
 *   tasks             attempt 0 of every task 0..TASKS-1, committed (as commit=T.0)
 *   commit=T.A        task T, attempt A: setupTask, write, needsTaskCommit, commitTask
 *   fail=T.A          task T, attempt A: setupTask, write, abortTask
 *   big=BYTES         size of task 0's top-level part file in later writes
 *   pause=LABEL       print "@@PAUSE label=LABEL", then wait for a line on stdin
 *   commitJob         job side
 *   abortJob          job side (state FAILED)
 *
 * Every step prints one line "@@STEP key=value ..." (values hold no spaces). A
 * failing step prints "@@ERROR action=... class=... message=..." and exits with 2.
 * File contents follow content(): the Python side rebuilds them to compare bytes.
 */
public class CommitterDriver {
    private final Configuration conf;
    private final Path taskOut;
    private final Path jobOut;
    private final int tasks;
    private final JobID jobId = new JobID("20261124", 1);
    private final JobContext jobContext;
    private FileOutputCommitter jobCommitter;
    private int bigBytes = -1;

    CommitterDriver(String taskUrl, String jobUrl, int tasks) {
        conf = new Configuration();  // no fs.defaultFS set: every path carries its scheme
        conf.setInt(FileOutputCommitter.FILEOUTPUTCOMMITTER_ALGORITHM_VERSION, 1);
        // a FileSystem per committer, as separate task and driver JVMs would have
        conf.setBoolean("fs.webhdfs.impl.disable.cache", true);
        this.taskOut = new Path(taskUrl);
        this.jobOut = new Path(jobUrl);
        this.tasks = tasks;
        this.jobContext = new JobContextImpl(conf, jobId);
    }

    /** The bytes of one file: its line repeated, cut to size (rebuilt by the Python test). */
    static byte[] content(String file, int task, int attempt, int size) {
        byte[] line = (file + " task " + task + " attempt " + attempt + "\n")
            .getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[size];
        for (int i = 0; i < size; i++) {
            out[i] = line[i % line.length];
        }
        return out;
    }

    /** The files a task writes: a top-level part and partition-style ones. */
    List<String[]> filesOf(int task) {
        String part = String.format("part-%05d", task);
        List<String[]> files = new ArrayList<>();
        int top = task == 0 && bigBytes >= 0 ? bigBytes : 2000 + 37 * task;
        files.add(new String[] {part, Integer.toString(top)});
        files.add(new String[] {"day=1/" + part, Integer.toString(300 + task)});
        if (task % 2 == 1) {
            files.add(new String[] {"day=2/" + part, Integer.toString(40 + task)});
        }
        return files;
    }

    private FileOutputCommitter jobSide() throws IOException {
        if (jobCommitter == null) {
            jobCommitter = new FileOutputCommitter(jobOut, jobContext);
        }
        return jobCommitter;
    }

    private static void say(String step, String... pairs) {
        StringBuilder line = new StringBuilder("@@").append(step);
        for (int i = 0; i + 1 < pairs.length; i += 2) {
            line.append(' ').append(pairs[i]).append('=').append(pairs[i + 1]);
        }
        System.out.println(line);
        System.out.flush();
    }

    /** One task attempt: set up, write, then commit it (commit) or abort it. */
    void attempt(int task, int attempt, boolean commit) throws IOException {
        TaskAttemptID id = new TaskAttemptID(new TaskID(jobId, TaskType.MAP, task), attempt);
        TaskAttemptContext context = new TaskAttemptContextImpl(conf, id);
        FileOutputCommitter committer = new FileOutputCommitter(taskOut, context);
        String t = Integer.toString(task);
        String a = Integer.toString(attempt);
        committer.setupTask(context);
        Path work = committer.getTaskAttemptPath(context);
        say("SETUP_TASK", "task", t, "attempt", a, "path", work.toString());
        FileSystem fs = work.getFileSystem(conf);
        for (String[] file : filesOf(task)) {
            int size = Integer.parseInt(file[1]);
            try (FSDataOutputStream out = fs.create(new Path(work, file[0]), false)) {
                out.write(content(file[0], task, attempt, size));
            }
            say("WROTE", "task", t, "attempt", a, "file", file[0], "bytes", file[1]);
        }
        if (!commit) {
            committer.abortTask(context);
            say("ABORT_TASK", "task", t, "attempt", a,
                "attempt_path_exists", Boolean.toString(fs.exists(work)));
            return;
        }
        boolean needed = committer.needsTaskCommit(context);
        say("NEEDS_TASK_COMMIT", "task", t, "attempt", a, "value", Boolean.toString(needed));
        if (needed) {
            committer.commitTask(context);
            say("COMMIT_TASK", "task", t, "attempt", a,
                "path", committer.getCommittedTaskPath(context).toString());
        }
    }

    void run(String action, BufferedReader stdin) throws IOException {
        String name = action;
        String arg = "";
        int eq = action.indexOf('=');
        if (eq >= 0) {
            name = action.substring(0, eq);
            arg = action.substring(eq + 1);
        }
        switch (name) {
            case "setupJob":
                jobSide().setupJob(jobContext);
                say("SETUP_JOB", "path", jobSide().getJobAttemptPath(jobContext).toString());
                break;
            case "tasks":
                for (int task = 0; task < tasks; task++) {
                    attempt(task, 0, true);
                }
                break;
            case "commit":
            case "fail": {
                String[] ta = arg.split("\\.");
                attempt(Integer.parseInt(ta[0]), Integer.parseInt(ta[1]), name.equals("commit"));
                break;
            }
            case "big":
                bigBytes = Integer.parseInt(arg);
                break;
            case "pause":
                say("PAUSE", "label", arg);
                if (stdin.readLine() == null) {
                    throw new IOException("stdin closed while paused at " + arg);
                }
                break;
            case "commitJob":
                jobSide().commitJob(jobContext);
                say("COMMIT_JOB", "path", jobOut.toString());
                break;
            case "abortJob":
                jobSide().abortJob(jobContext, JobStatus.State.FAILED);
                say("ABORT_JOB", "path", jobOut.toString());
                break;
            default:
                throw new IllegalArgumentException("unknown action " + action
                    + "; see CommitterDriver's usage");
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: CommitterDriver TASK_URL JOB_URL TASKS ACTION...");
            System.exit(64);
        }
        CommitterDriver driver = new CommitterDriver(args[0], args[1], Integer.parseInt(args[2]));
        BufferedReader stdin = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (int i = 3; i < args.length; i++) {
            try {
                driver.run(args[i], stdin);
            } catch (Exception e) {
                e.printStackTrace();
                String message = String.valueOf(e.getMessage()).replaceAll("\\s+", "_");
                say("ERROR", "action", args[i], "class", e.getClass().getName(),
                    "message", message);
                System.exit(2);
            }
        }
        say("DONE");
        System.exit(0);
    }
}
