"""Response models of Open311 GeoReport v2 (JSON; the XML carries the same elements).

Field names and order are GeoReport's; the routes write them as JSON arrays or
as XML documents (:func:`to_xml`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from pydantic import BaseModel, ConfigDict

from api.services.incidents import open311 as svc


class _Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Open311Error(_Model):
    """One entry of GeoReport's error array."""

    code: int
    description: str


class Endpoint(_Model):
    """One endpoint of the discovery document."""

    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Discovery(_Model):
    """GeoReport's discovery document."""

    changeset: str
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class Service(_Model):
    """A catalogue item as a GeoReport service."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class ServiceDefinition(_Model):
    """A service's extra attributes (none)."""

    service_code: str
    attributes: list[dict[str, Any]]


class ServiceRequest(_Model):
    """An incident as a GeoReport service request (no personal fields)."""

    service_request_id: str
    status: str
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class Receipt(_Model):
    """The answer to a posted request."""

    service_request_id: str
    service_notice: str
    account_id: str | None


def services(items: list[svc.Service]) -> list[Service]:
    """Shape the service list."""
    return [Service.model_validate(s) for s in items]


def requests(items: list[svc.ServiceRequest]) -> list[ServiceRequest]:
    """Shape service requests."""
    return [ServiceRequest.model_validate(r) for r in items]


# --------------------------------------------------------------------------- XML


def _xml(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _fill(el: ET.Element, data: dict[str, Any]) -> None:
    for key, value in data.items():
        child = ET.SubElement(el, key)
        if isinstance(value, list):
            for v in value:
                ET.SubElement(child, key.rstrip("s") or "value").text = str(v)
        elif value is not None:
            child.text = str(value).lower() if isinstance(value, bool) else str(value)


def to_xml(root_name: str, item_name: str, items: list[BaseModel]) -> str:
    """Write a list of models as GeoReport XML (``<services><service>…``)."""
    root = ET.Element(root_name)
    for item in items:
        _fill(ET.SubElement(root, item_name), item.model_dump())
    return _xml(root)


def discovery_xml(doc: Discovery) -> str:
    """Write the discovery document as XML."""
    root = ET.Element("discovery")
    for k in ("changeset", "contact", "key_service"):
        ET.SubElement(root, k).text = str(getattr(doc, k))
    endpoints = ET.SubElement(root, "endpoints")
    for ep in doc.endpoints:
        el = ET.SubElement(endpoints, "endpoint")
        for k, v in ep.model_dump().items():
            if k == "formats":
                formats = ET.SubElement(el, "formats")
                for f in v:
                    ET.SubElement(formats, "format").text = f
            else:
                ET.SubElement(el, k).text = v
    return _xml(root)


def definition_xml(doc: ServiceDefinition) -> str:
    """Write a service definition as XML."""
    root = ET.Element("service_definition")
    ET.SubElement(root, "service_code").text = doc.service_code
    ET.SubElement(root, "attributes")
    return _xml(root)


def errors_xml(code: int, description: str) -> str:
    """Write GeoReport's error array as XML."""
    root = ET.Element("errors")
    err = ET.SubElement(root, "error")
    ET.SubElement(err, "code").text = str(code)
    ET.SubElement(err, "description").text = description
    return _xml(root)
