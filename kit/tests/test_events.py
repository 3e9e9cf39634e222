"""The envelope's source: one spelling for every publisher, derived from the event type."""

from __future__ import annotations

from typing import ClassVar

import pytest

from contracts.events import all_event_models
from kit.events import EventData, envelope, event_source, publisher_of


class ParcelPicked(EventData):
    event_type: ClassVar[str] = "yiwang.express.shipment.picked.v1"
    nats_subject: ClassVar[str] = "express.shipment.picked"

    waybill: str


def test_the_source_is_the_publishing_service():
    event = envelope(ParcelPicked(waybill="EA123456785CN"), subject="EA123456785CN")
    assert event.source == "/yiwang/express"
    assert event_source("caseflow") == "/yiwang/caseflow"
    assert publisher_of("yiwang.caseflow.case.approved.v1") == "caseflow"


def test_every_contract_event_gets_its_own_services_source():
    for model in all_event_models():
        assert model.event_type.split(".")[1] == publisher_of(model.event_type), model.__name__
        assert model.nats_subject.startswith(publisher_of(model.event_type) + "."), model.__name__


def test_a_test_may_pose_as_another_publisher():
    event = envelope(ParcelPicked(waybill="EA123456785CN"), source="test")
    assert event.source == "test" and event.type == "yiwang.express.shipment.picked.v1"


@pytest.mark.parametrize("bad", ["", "yiwang/catalog", "yiwang.caseflow"])
def test_a_source_is_made_from_a_bare_service_name(bad):
    with pytest.raises(ValueError, match="not a service name"):
        event_source(bad)
