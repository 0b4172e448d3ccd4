"""The HDFS namespace over S3: the rules that make objects look like a filesystem.

- :mod:`.views` — which consistent view (if any) is in force for a path, and the
  records every write leaves in it;
- :mod:`.markers` — directory markers of both kinds (``dir/`` and EMRFS's
  ``dir_$folder$``), parent checks, the markers a create clears and a delete
  restores, the S3 side of ``info`` and ``ls``, batched deletes;
- :mod:`.tree` — a directory's whole tree (what ``rm`` and ``mv`` act on), has-children,
  ``rm`` and ``rmdir``;
- :mod:`.rename` — copy and rename of files and trees (journalled by :mod:`emrfs.renames`);
- :mod:`.listing` — ``ls`` and ``find``: S3, the view's rows and the tier's children merged;

Each part receives the collaborators it needs (the S3 client, the options, the
view lookup, the status factory, the cache, the encryption layer), never the
filesystem; the filesystem and the ephemeral tier use
them alike.  This package imports nothing at its top, so a layer may import one
part without the others.
"""
