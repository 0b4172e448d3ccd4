"""Quickstart: start the embedded servers, write a DataFrame as Parquet to emrfs://, read it back.

Run with ``python -m emrfs.quickstart``.  Uses ``EMRFS_ENDPOINT_URL`` when set,
otherwise starts moto's server on 127.0.0.1 and stops it at the end.
"""

from __future__ import annotations

import sys
import time
import uuid


def main() -> int:
    try:
        import pandas as pd
    except ImportError:
        print("the quickstart needs pandas and pyarrow: pip install 'emrfs[quickstart]'",
              file=sys.stderr)
        return 2
    import fsspec

    from emrfs.testing import LocalServers

    with LocalServers() as servers:
        where = "embedded moto server" if servers.embedded else "EMRFS_ENDPOINT_URL"
        print(f"1. S3/DynamoDB/KMS endpoint: {servers.endpoint_url} ({where})")
        options = {"endpoint_url": servers.endpoint_url}
        fs = fsspec.filesystem("emrfs", **options)
        bucket = f"quickstart-{uuid.uuid4().hex[:8]}"
        fs.mkdir(bucket)
        print(f"2. created bucket emrfs://{bucket}")

        frame = pd.DataFrame({"city": ["Oslo", "Lima", "Pune", "Kobe"],
                              "temp_c": [3.5, 19.0, 27.25, 12.0]})
        url = f"emrfs://{bucket}/weather/readings.parquet"
        started = time.perf_counter()
        frame.to_parquet(url, storage_options=options)
        print(f"3. wrote {len(frame)} rows to {url} in {time.perf_counter() - started:.2f}s")

        for entry in fs.ls(f"{bucket}/weather"):
            print(f"4. ls: {entry['name']}  {entry['type']}  {entry['size']} bytes  "
                  f"replication={entry['replication']} blockSize={entry['blockSize']}")

        back = pd.read_parquet(url, storage_options=options)
        same = back.equals(frame)
        print(f"5. read back {len(back)} rows; identical to what was written: {same}")
        print(back.to_string(index=False))
        fs.rm(bucket, recursive=True)
        print(f"6. removed emrfs://{bucket}; done")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
