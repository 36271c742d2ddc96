"""The learning index's retention (issue 21): a catalogue entry must lapse before the token entries it
vouches for, or a version could be believed indexed while its tokens are gone (DynamoDB's TTL deletes
late and in no order). Oracle: the clock, moved here by hand, and the table's own items."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from kyc.aws import learning_index
from kyc.aws.learning_index import DynamoDBLearningIndex, version_ref

DAY = 86400


@pytest.fixture
def index():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(
            TableName="unit-learning-index",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        yield DynamoDBLearningIndex("unit-learning-index", 90, ddb), ddb


def test_a_catalogue_entry_lapses_a_day_before_the_tokens_it_vouches_for(index, monkeypatch) -> None:
    store, ddb = index
    t0 = 1_800_000_000
    monkeypatch.setattr(learning_index.time, "time", lambda: t0)
    store.record("runs/r1/", ["tok-a", "tok-b"])
    store.catalogue("runs/r1/dataset/dataset.json", ["v1"])
    items = ddb.scan(TableName="unit-learning-index")["Items"]
    expiry = {i["pk"]["S"]: int(i["expires_at"]["N"]) for i in items}
    assert expiry["t#tok-a"] == t0 + (90 + 2) * DAY and expiry["catalogue"] == t0 + (90 + 1) * DAY
    assert store.catalogued() == {version_ref("runs/r1/dataset/dataset.json", "v1"): False}
    # a second past the catalogue's expiry (the item may still be there: TTL deletes late)
    monkeypatch.setattr(learning_index.time, "time", lambda: t0 + 91 * DAY + 1)
    assert store.catalogued() == {}  # so the next catch-up indexes the version again
    assert store.units(["tok-a"]) == {"runs/r1/"}  # while its tokens are still there
    assert store.forget(["tok-a"]) == 1 and store.units(["tok-a", "tok-b"]) == {"runs/r1/"}


def test_an_erasure_record_outlives_the_learning_data_and_forgetting_the_subject_keeps_it(
    index, monkeypatch
) -> None:
    """Issue 21 autoindex: the record that a subject was erased must outlast any run's output (the
    learning retention), must survive the erasure's own forget() of the subject's index entries, and is
    ignored once past its TTL (DynamoDB deletes late)."""
    store, ddb = index
    t0 = 1_800_000_000
    monkeypatch.setattr(learning_index.time, "time", lambda: t0)
    assert store.remember_erased(["tok-e", "tok-e", "tok-k"]) == 2
    store.record("runs/r1/", ["tok-e"])
    assert store.forget(["tok-e"]) == 1  # the index entry goes with the subject ...
    assert store.erased() == {"tok-e", "tok-k"}  # ... the record of the erasure stays
    items = ddb.scan(TableName="unit-learning-index")["Items"]
    assert {int(i["expires_at"]["N"]) for i in items if i["pk"]["S"] == "erased"} == {t0 + (90 + 2) * DAY}
    monkeypatch.setattr(learning_index.time, "time", lambda: t0 + 90 * DAY)  # the oldest a run's rows get
    assert store.erased() == {"tok-e", "tok-k"}
    monkeypatch.setattr(learning_index.time, "time", lambda: t0 + 92 * DAY + 1)
    assert store.erased() == frozenset()
