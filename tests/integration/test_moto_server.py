"""The embedded moto server (emrfs.testing._moto_main) keeps connections open between
requests, a body it does not read never reaches the next request's parser, and a
cancelled DynamoDB transaction never erases another connection's writes."""

from __future__ import annotations

import http.client
import urllib.parse


def test_one_connection_serves_requests_whose_bodies_moto_leaves_unread(
    emrfs_endpoint, emrfs_bucket
):
    url = urllib.parse.urlsplit(emrfs_endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        # into a bucket that does not exist: moto answers without reading the body
        conn.request("PUT", f"/{emrfs_bucket}-none/k", body=b"x" * 100_000)
        first = conn.getresponse()
        assert first.status == 404 and b"NoSuchBucket" in first.read()
        sock = conn.sock
        assert sock is not None, "the server closed the connection after one request"
        conn.request(
            "PUT", f"/{emrfs_bucket}/c", body=iter([b"ab" * 500, b"cd" * 500]), encode_chunked=True
        )
        chunked = conn.getresponse()  # unsigned and chunked: moto's answer varies
        assert chunked.status in (200, 403), chunked.status
        chunked.read()
        conn.request("HEAD", f"/{emrfs_bucket}/c")
        head = conn.getresponse()
        assert head.status in (403, 404) and head.read() == b""  # no body after a HEAD
        conn.request("GET", "/moto-api/")
        page = conn.getresponse()
        assert page.status == 200 and len(page.read()) == int(page.getheader("Content-Length"))
        assert conn.sock is sock  # all four on the first connection
    finally:
        conn.close()


def test_a_failed_transaction_keeps_writes_made_while_it_ran(emrfs_endpoint):
    """moto snapshots a table when a transaction starts and restores the snapshot when
    one of its conditions fails, erasing every write other connections made meanwhile.
    emrfs's consistent view creates ancestor directory rows in conditional
    transactions, and writers racing to create the same ancestors make them fail: a
    file recorded in between lost its row, and the view said the file was deleted.
    The embedded server runs DynamoDB requests one at a time, as a real table never
    loses a write."""
    import threading
    import uuid

    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    table = f"moto-tx-{uuid.uuid4().hex[:12]}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        writes = [f"w-{i}" for i in range(150)]
        for key in [*writes, "taken"]:
            ddb.put_item(TableName=table, Item={"k": {"S": key}, "v": {"N": "0"}})
        stop = threading.Event()
        cancelled: list[int] = []

        def failing_transactions() -> None:
            racer = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
            while not stop.is_set():
                try:  # four puts, then a condition that fails: the transaction is cancelled
                    racer.transact_write_items(
                        TransactItems=[
                            *(
                                {"Put": {"TableName": table, "Item": {"k": {"S": f"tx-{i}"}}}}
                                for i in range(4)
                            ),
                            {
                                "ConditionCheck": {
                                    "TableName": table,
                                    "Key": {"k": {"S": "taken"}},
                                    "ConditionExpression": "attribute_not_exists(k)",
                                }
                            },
                        ]
                    )
                except racer.exceptions.TransactionCanceledException:
                    cancelled.append(1)

        racer = threading.Thread(target=failing_transactions)
        racer.start()
        try:
            for key in writes:
                ddb.put_item(TableName=table, Item={"k": {"S": key}, "v": {"N": "1"}})
        finally:
            stop.set()
            racer.join()
        assert cancelled, "no transaction ran beside the writes"
        pages = ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        stored = {item["k"]["S"]: item["v"]["N"] for page in pages for item in page["Items"]}
        lost = [k for k in writes if stored.get(k) != "1"]
        assert not lost, f"{len(lost)} writes erased by a cancelled transaction: {lost[:5]}"
    finally:
        ddb.delete_table(TableName=table)


def test_a_query_answers_from_its_partition_as_a_scan_of_the_table_would(emrfs_endpoint):
    """The embedded server reads a base-table Query's partition, not the whole table
    (moto sorted every row of the table for each Query): the answers stay moto's --
    order, pages, ranges, filters, and queries of an index, which read the table."""
    import uuid

    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")
    table = f"moto-q-{uuid.uuid4().hex[:12]}"
    ddb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "p", "KeyType": "HASH"},
            {"AttributeName": "c", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "p", "AttributeType": "S"},
            {"AttributeName": "c", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    rows = [(f"dir{p}", f"f{c:03d}", c) for p in range(6) for c in range(40)]
    for p, c, n in rows:
        item = {"p": {"S": p}, "c": {"S": c}, "n": {"N": str(n)}, "g": {"S": f"g{n % 3}"}}
        ddb.put_item(TableName=table, Item=item)

    def query(**kw) -> list[tuple[str, str]]:
        pages = ddb.get_paginator("query").paginate(TableName=table, **kw)
        return [(i["p"]["S"], i["c"]["S"]) for page in pages for i in page["Items"]]

    in_dir2 = [(p, c) for p, c, _ in rows if p == "dir2"]
    values = {":p": {"S": "dir2"}}
    assert query(KeyConditionExpression="p = :p", ExpressionAttributeValues=values) == in_dir2
    assert (
        query(
            KeyConditionExpression="p = :p",
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            PaginationConfig={"PageSize": 7},
        )
        == in_dir2[::-1]
    )
    assert query(
        KeyConditionExpression="p = :p AND begins_with(c, :c)",
        FilterExpression="n > :n",
        ExpressionAttributeValues={**values, ":c": {"S": "f01"}, ":n": {"N": "14"}},
    ) == [("dir2", f"f{c:03d}") for c in range(15, 20)]
    missing = {":p": {"S": "nothing-here"}}
    assert query(KeyConditionExpression="p = :p", ExpressionAttributeValues=missing) == []
    by_g = query(
        IndexName="by-g",
        KeyConditionExpression="g = :g",
        ExpressionAttributeValues={":g": {"S": "g1"}},
    )
    assert sorted(by_g) == sorted((p, c) for p, c, n in rows if n % 3 == 1)
    assert ddb.scan(TableName=table, Select="COUNT")["Count"] == len(rows)  # (no partition added)


def test_a_cancelled_transaction_puts_back_the_rows_it_named_and_only_those(emrfs_endpoint):
    """The embedded server saves the rows a transaction names, not a copy of the table
    (moto deep-copied the whole table for every transaction: O(rows) each); a cancelled
    transaction still leaves every row as it was, in a table with and without a range
    key, whether a condition failed or the request was invalid (one row named twice)."""
    import uuid

    import boto3

    ddb = boto3.client("dynamodb", endpoint_url=emrfs_endpoint, region_name="us-east-1")

    def scan(table: str) -> list[dict]:
        pages = ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        return sorted((item for page in pages for item in page["Items"]), key=repr)

    for ranged in (True, False):
        table = f"moto-tj-{uuid.uuid4().hex[:12]}"
        schema = [{"AttributeName": "p", "KeyType": "HASH"}]
        attrs = [{"AttributeName": "p", "AttributeType": "S"}]
        if ranged:
            schema.append({"AttributeName": "c", "KeyType": "RANGE"})
            attrs.append({"AttributeName": "c", "AttributeType": "S"})
        ddb.create_table(
            TableName=table,
            KeySchema=schema,
            AttributeDefinitions=attrs,
            BillingMode="PAY_PER_REQUEST",
        )

        def key(name: str, ranged: bool = ranged) -> dict:
            return {"p": {"S": name}, **({"c": {"S": "f"}} if ranged else {})}

        try:
            for name in ("kept", "put-over", "updated", "deleted", "guard"):
                ddb.put_item(TableName=table, Item={**key(name), "v": {"N": "1"}})
            before = scan(table)
            changes = [
                {"Put": {"TableName": table, "Item": {**key("new"), "v": {"N": "2"}}}},
                {"Put": {"TableName": table, "Item": {**key("put-over"), "v": {"N": "2"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": key("updated"),
                        "UpdateExpression": "SET v = :v, w = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
                {"Delete": {"TableName": table, "Key": key("deleted")}},
            ]
            failing = {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": key("guard"),
                    "ConditionExpression": "attribute_not_exists(p)",
                }
            }
            try:
                ddb.transact_write_items(TransactItems=[*changes, failing])
            except ddb.exceptions.TransactionCanceledException:
                pass
            else:
                raise AssertionError("the transaction's condition should have failed")
            assert scan(table) == before
            twice = {"Delete": {"TableName": table, "Key": key("new")}}
            try:
                ddb.transact_write_items(TransactItems=[*changes, twice])
            except ddb.exceptions.ClientError as exc:
                assert exc.response["Error"]["Code"] == "ValidationException"
            else:
                raise AssertionError("a row named twice should have been refused")
            assert scan(table) == before
            ddb.transact_write_items(TransactItems=changes)  # and one that succeeds
            after = {item["p"]["S"]: item for item in scan(table)}
            assert sorted(after) == ["guard", "kept", "new", "put-over", "updated"]
            assert after["updated"]["w"] == {"N": "2"} and after["put-over"]["v"] == {"N": "2"}
        finally:
            ddb.delete_table(TableName=table)
