"""Reading outlines that staff upload: GeoJSON in WGS84 longitude/latitude, inside Belgium.

:func:`parse_area` accepts a Polygon, a MultiPolygon, a Feature holding one, or a
FeatureCollection (or GeometryCollection) of them, checks it in full and returns the outline
as one normalised GeoJSON geometry with its shapely shape. Every refusal is an
:class:`~perron.errors.Invalid` saying what is wrong in plain words and, for a broken shape,
where (longitude, latitude) - so staff can find the spot in their GIS tool.

GeoJSON (RFC 7946) is always WGS84 longitude then latitude. Files exported in Belgian Lambert
(metres) or with latitude first are the two usual mistakes; both are recognised and named.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import shapely  # type: ignore[import-untyped]
from shapely.geometry import mapping, shape  # type: ignore[import-untyped]

from perron.errors import Invalid
from perron.i18n import gettext

MAX_BYTES = 2 * 1024 * 1024
"""Largest GeoJSON file accepted (a commune's detailed outline is a few hundred kB)."""
MAX_VERTICES = 50_000
"""Most points in one outline; more slows every placement for no visible gain."""

BELGIUM = (2.38, 49.40, 6.52, 51.62)
"""Belgium's extent (west, south, east, north), with a margin of about 10 km."""

_CRS84 = {
    "urn:ogc:def:crs:ogc:1.3:crs84",
    "urn:ogc:def:crs:epsg::4326",
    "epsg:4326",
    "crs84",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84",
    "http://www.opengis.net/def/crs/epsg/0/4326",
}
_AREA_TYPES = {"Polygon", "MultiPolygon"}
_REASON = re.compile(r"^(?P<reason>.*?)\s*\[(?P<x>[-+0-9.eE]+) (?P<y>[-+0-9.eE]+)\]$")


@dataclass(frozen=True)
class Area:
    """A checked outline: its GeoJSON (Polygon or MultiPolygon) and its shapely shape."""

    geometry: dict[str, Any]
    shape: Any
    vertices: int


def in_belgium(lon: float, lat: float) -> bool:
    west, south, east, north = BELGIUM
    return west <= lon <= east and south <= lat <= north


def _coordinate(value: float) -> str:
    return f"{value:.5f}"


def check_point(lon: object, lat: object, field: str = "point") -> tuple[float, float]:
    """A street's point or a point asked about: two finite numbers inside Belgium."""
    numbers: list[float] = []
    for value in (lon, lat):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise Invalid(field, gettext("Give the longitude and the latitude as numbers, such as 5.0789."))
        numbers.append(float(value))
    x, y = numbers
    if not in_belgium(x, y):
        if in_belgium(y, x):
            raise Invalid(
                field,
                gettext(
                    "The longitude and the latitude seem swapped: in Belgium the longitude is "
                    "between 2.5 and 6.4 and the latitude between 49.5 and 51.5."
                ),
            )
        raise Invalid(
            field,
            gettext("The point %(lon)s, %(lat)s is outside Belgium.")
            % {"lon": _coordinate(x), "lat": _coordinate(y)},
        )
    return x, y


def read_json(source: bytes | str, field: str = "file") -> Any:
    """The JSON value of an uploaded file, refusing files too large or not JSON."""
    size = len(source.encode("utf-8")) if isinstance(source, str) else len(source)
    if size > MAX_BYTES:
        raise Invalid(
            field,
            gettext("The file is too large (%(size)s MB); the limit is %(limit)s MB.")
            % {"size": f"{size / 1048576:.1f}", "limit": f"{MAX_BYTES // 1048576}"},
        )
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid(field, gettext("The file is not GeoJSON: it is not UTF-8 text.")) from None
    if not source.strip():
        raise Invalid(field, gettext("The file is empty."))
    try:
        return json.loads(source)
    except json.JSONDecodeError as error:
        raise Invalid(
            field,
            gettext("The file is not GeoJSON: it is not valid JSON (line %(line)s, column %(column)s).")
            % {"line": error.lineno, "column": error.colno},
        ) from None
    except RecursionError:
        raise Invalid(field, gettext("The file is not GeoJSON: it is nested too deeply.")) from None


def parse_area(source: bytes | str | Mapping[str, Any], field: str = "geometry") -> Area:
    """Check an uploaded outline in full; see the module's documentation."""
    data = source if isinstance(source, Mapping) else read_json(source, field)
    geometries = list(_area_geometries(data, field))
    if not geometries:
        raise Invalid(field, gettext("The file holds no outline (no Polygon or MultiPolygon)."))
    _check_crs(data, field)
    counter = _Counter()
    polygons: list[list[list[list[float]]]] = []
    for geometry in geometries:
        polygons += _polygons(geometry, field, counter)
    _check_extent(polygons, field)
    shapes = [shape({"type": "Polygon", "coordinates": polygon}) for polygon in polygons]
    for index, single in enumerate(shapes):
        _check_valid(single, field, index if len(shapes) > 1 else None)
    combined = shapes[0] if len(shapes) == 1 else shapely.union_all(shapes)
    if len(shapes) > 1 and not shapely.is_valid(combined):
        _check_valid(combined, field, None)
    if combined.geom_type not in _AREA_TYPES or combined.is_empty or combined.area <= 0:
        raise Invalid(field, gettext("The outline has no area."))
    oriented = shapely.orient_polygons(combined)
    return Area(to_geojson(oriented), oriented, counter.count)


def stored_shape(geometry: Mapping[str, Any]) -> Any:
    """The shapely shape of an outline already checked and stored."""
    return shape(geometry)


def to_geojson(geometry: Any) -> dict[str, Any]:
    """A shapely Polygon or MultiPolygon as plain GeoJSON (lists, not tuples)."""
    result: dict[str, Any] = _lists(mapping(geometry))
    return result


def union(geometries: Sequence[Mapping[str, Any]]) -> Area:
    """The union of stored outlines (a merge), checked like an upload."""
    combined = shapely.orient_polygons(shapely.union_all([shape(geometry) for geometry in geometries]))
    return parse_area(to_geojson(combined))


def overlap(first: Any, second: Any) -> tuple[float, float] | None:
    """A point inside the overlap of two outlines, or None when they only touch or are apart."""
    shared = shapely.intersection(first, second)
    if shared.is_empty or shared.area <= 1e-10:
        return None
    inside = shapely.point_on_surface(shared)
    return float(inside.x), float(inside.y)


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value


def features(data: Any, field: str = "file") -> Iterator[tuple[Mapping[str, Any], Area]]:
    """Each feature of a FeatureCollection with its properties and its checked outline
    (demo files and imports that carry names in their properties)."""
    if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection":
        raise Invalid(field, gettext("Expected a GeoJSON FeatureCollection."))
    items = data.get("features")
    if not isinstance(items, list):
        raise Invalid(field, gettext("The FeatureCollection has no list of features."))
    for index, feature in enumerate(items, start=1):
        where = f"{field}[{index}]"
        if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
            raise Invalid(where, gettext("This item of the collection is not a Feature."))
        properties = feature.get("properties") or {}
        if not isinstance(properties, Mapping):
            raise Invalid(where, gettext("The properties of a feature must be an object."))
        yield properties, parse_area(feature, where)


def _area_geometries(data: Any, field: str) -> Iterator[Mapping[str, Any]]:
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise Invalid(field, gettext('The file is not GeoJSON: it has no "type".'))
    kind = data["type"]
    if kind in _AREA_TYPES:
        yield data
    elif kind == "Feature":
        geometry = data.get("geometry")
        if geometry is None:
            raise Invalid(field, gettext("The feature has no geometry."))
        yield from _area_geometries(geometry, field)
    elif kind == "FeatureCollection":
        items = data.get("features")
        if not isinstance(items, list):
            raise Invalid(field, gettext("The FeatureCollection has no list of features."))
        for item in items:
            if not isinstance(item, Mapping) or item.get("type") != "Feature":
                raise Invalid(field, gettext("An item of the FeatureCollection is not a Feature."))
            if item.get("geometry") is not None:
                yield from _area_geometries(item, field)
    elif kind == "GeometryCollection":
        items = data.get("geometries")
        if not isinstance(items, list):
            raise Invalid(field, gettext("The GeometryCollection has no list of geometries."))
        for item in items:
            yield from _area_geometries(item, field)
    else:
        raise Invalid(
            field,
            gettext(
                "An outline must be a Polygon or a MultiPolygon (or a Feature or FeatureCollection of "
                "them), not a %(type)s."
            )
            % {"type": kind[:40]},
        )


def _check_crs(data: Mapping[str, Any], field: str) -> None:
    """Old GeoJSON (2008) could name another coordinate system; RFC 7946 removed it."""
    crs = data.get("crs")
    if not isinstance(crs, Mapping):
        return
    properties = crs.get("properties")
    name = properties.get("name") if isinstance(properties, Mapping) else None
    if isinstance(name, str) and name.strip().lower() not in _CRS84:
        raise Invalid(
            field,
            gettext(
                "The file uses the coordinate system %(crs)s; export it in WGS84 longitude and "
                "latitude (EPSG:4326)."
            )
            % {"crs": name[:80]},
        )


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def add(self, count: int, field: str) -> None:
        self.count += count
        if self.count > MAX_VERTICES:
            raise Invalid(
                field,
                gettext("The outline has more than %(limit)s points; simplify it before sending it.")
                % {"limit": f"{MAX_VERTICES:,}".replace(",", " ")},
            )


def _polygons(geometry: Mapping[str, Any], field: str, counter: _Counter) -> list[list[list[list[float]]]]:
    coordinates = geometry.get("coordinates")
    if geometry["type"] == "Polygon":
        return [_polygon(coordinates, field, counter, 1)]
    if not isinstance(coordinates, list) or not coordinates:
        raise Invalid(field, gettext("The MultiPolygon has no polygons."))
    return [_polygon(item, field, counter, index) for index, item in enumerate(coordinates, start=1)]


def _polygon(value: Any, field: str, counter: _Counter, number: int) -> list[list[list[float]]]:
    if not isinstance(value, list) or not value:
        raise Invalid(field, gettext("Polygon %(number)s has no rings of coordinates.") % {"number": number})
    rings: list[list[list[float]]] = []
    for ring_number, ring in enumerate(value, start=1):
        if not isinstance(ring, list):
            raise Invalid(field, _where(gettext("A ring is not a list of points."), number, ring_number))
        counter.add(len(ring), field)
        points = [_position(position, field, number, ring_number) for position in ring]
        if points and points[0] != points[-1]:
            points.append(points[0])  # forgive an unclosed ring: GeoJSON repeats the first point
        if len(points) < 4:
            raise Invalid(
                field,
                _where(
                    gettext("A ring needs at least three distinct points, the first repeated at the end."),
                    number,
                    ring_number,
                ),
            )
        rings.append(points)
    return rings


def _where(message: str, polygon: int, ring: int) -> str:
    return gettext("%(message)s (polygon %(polygon)s, ring %(ring)s)") % {
        "message": message,
        "polygon": polygon,
        "ring": ring,
    }


def _position(value: Any, field: str, polygon: int, ring: int) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) < 2
        or any(isinstance(item, bool) or not isinstance(item, int | float) for item in value[:2])
        or not all(math.isfinite(item) for item in value[:2])
    ):
        raise Invalid(
            field,
            _where(gettext("Each point must be a pair of numbers [longitude, latitude]."), polygon, ring),
        )
    return [float(value[0]), float(value[1])]


def _check_extent(polygons: list[list[list[list[float]]]], field: str) -> None:
    for polygon in polygons:
        for ring in polygon:
            for lon, lat in ring:
                if in_belgium(lon, lat):
                    continue
                if in_belgium(lat, lon):
                    raise Invalid(
                        field,
                        gettext(
                            "The coordinates seem to be in latitude, longitude order; GeoJSON puts the "
                            "longitude first."
                        ),
                    )
                if abs(lon) > 180 or abs(lat) > 90:
                    raise Invalid(
                        field,
                        gettext(
                            "The coordinates look like metres (a projected system such as Belgian "
                            "Lambert); export the file in WGS84 longitude and latitude (EPSG:4326)."
                        ),
                    )
                raise Invalid(
                    field,
                    gettext(
                        "The outline goes outside Belgium (at longitude %(lon)s, latitude %(lat)s); "
                        "coordinates must be WGS84 longitude and latitude."
                    )
                    % {"lon": _coordinate(lon), "lat": _coordinate(lat)},
                )


def _check_valid(geometry: Any, field: str, part: int | None) -> None:
    reason = shapely.is_valid_reason(geometry)
    if reason is None or reason == "Valid Geometry":
        return
    found = _REASON.match(reason)
    kind = found.group("reason") if found else reason
    if kind in {"Self-intersection", "Ring Self-intersection"}:
        text = gettext("The outline crosses itself")
    elif kind == "Hole lies outside shell":
        text = gettext("A hole of the outline lies outside it")
    elif kind == "Nested shells":
        text = gettext("One polygon of the outline lies inside another")
    elif kind == "Interior is disconnected":
        text = gettext("A hole cuts the outline in two")
    elif kind in {"Too few points in geometry component", "Invalid Coordinate"}:
        text = gettext("A ring of the outline has too few distinct points")
    else:
        text = gettext("The outline is not a valid shape (%(reason)s)") % {"reason": kind[:60]}
    if part is not None:
        text = gettext("%(message)s in polygon %(number)s") % {"message": text, "number": part + 1}
    if found:
        text = gettext("%(message)s near longitude %(lon)s, latitude %(lat)s.") % {
            "message": text,
            "lon": _coordinate(float(found.group("x"))),
            "lat": _coordinate(float(found.group("y"))),
        }
    else:
        text += "."
    raise Invalid(field, text)
