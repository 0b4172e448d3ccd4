import java.util.ArrayList;
import java.util.List;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FsShell;
import org.apache.hadoop.util.ToolRunner;

/**
 * Runs several Hadoop FsShell command lines in one JVM (JVM start-up dominates
 * otherwise). Command lines are separated by "--"; after each one the exit
 * code is printed as a line "@@EXIT n".
 */
public class FsShellBatch {
    public static void main(String[] args) throws Exception {
        List<List<String>> commands = new ArrayList<>();
        List<String> current = new ArrayList<>();
        for (String arg : args) {
            if (arg.equals("--")) {
                commands.add(current);
                current = new ArrayList<>();
            } else {
                current.add(arg);
            }
        }
        commands.add(current);
        Configuration conf = new Configuration();
        for (List<String> command : commands) {
            int code = ToolRunner.run(conf, new FsShell(), command.toArray(new String[0]));
            System.out.flush();
            System.out.println("@@EXIT " + code);
            System.out.flush();
        }
        System.exit(0);
    }
}
