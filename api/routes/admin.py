"""``/v1/admin``: the sensor registry, read and changed through the API, behind an API key of
the ``admin`` scope (:mod:`api.keys`).

What a change does to the registry file, and how it is written safely: :mod:`api.admin`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Response
from fastapi import Path as PathParam
from pydantic import ValidationError

from api.admin import (
    Conflict,
    NotConfigured,
    RegistryList,
    SensorChange,
    Unknown,
    add,
    change,
)
from api.context import Context
from api.keys import API_KEY_HEADER, Principal
from api.openapi import PROBLEM
from api.routes.parameters import ApiKeyHeader
from urbanpulse.model import ID_PATTERN
from urbanpulse.registry import SensorInfo

T = TypeVar("T")

RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or not a valid one", "content": PROBLEM},
    403: {"description": "a valid API key, but not one of the admin scope", "content": PROBLEM},
    503: {
        "description": "no registry file is configured (`streams.registry_path`), or it "
        "cannot be read or written",
        "content": PROBLEM,
    },
}
EXAMPLE_SENSOR = {
    "tenant": "utrecht",
    "sensor_id": "air-001",
    "district": "centrum",
    "sensor_type": "SDS011",
    "licence": "CC-BY-4.0",
    "privacy": "open",
    "lat": 52.0907,
    "lon": 5.1214,
    "interval_s": 60,
}
TenantPath = Annotated[str, PathParam(pattern=ID_PATTERN, examples=["utrecht"])]
SensorPath = Annotated[str, PathParam(pattern=ID_PATTERN, examples=["air-001"])]


async def administrator(ctx: Context, key: ApiKeyHeader = None) -> Principal:
    """Who the request's API key names: a 401 problem without a valid key, a 403 problem
    when the key is not an ``admin`` key."""
    found = ctx.keys.identify(key) if key else None
    if found is None:
        raise HTTPException(
            401,
            f"administration needs a valid API key in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": f'APIKey header="{API_KEY_HEADER}"'},
        )
    if not found.admin:
        raise HTTPException(
            403,
            "this API key may read but not administer: administration needs a key configured "
            "with the admin scope (KEY:admin in URBANPULSE_API__API_KEYS or the keys file)",
        )
    return found


router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(administrator)], responses=RESPONSES
)


@router.get("/sensors", response_model=RegistryList)
def list_sensors(ctx: Context) -> RegistryList:
    """Every sensor of the registry file, retired ones included."""
    sensors = run_registry_action(ctx.registry.read)
    return RegistryList(data=[info for _, info in sorted(sensors.items())])


@router.get(
    "/sensors/{tenant}/{sensor_id}",
    response_model=SensorInfo,
    responses={404: {"description": "not in the registry", "content": PROBLEM}},
)
def get_sensor(ctx: Context, tenant: TenantPath, sensor_id: SensorPath) -> SensorInfo:
    """One sensor of the registry."""
    sensors = run_registry_action(ctx.registry.read)
    if (tenant, sensor_id) not in sensors:
        raise HTTPException(404, f"{tenant}/{sensor_id} is not in the registry")
    return sensors[(tenant, sensor_id)]


@router.post(
    "/sensors",
    status_code=201,
    response_model=SensorInfo,
    responses={
        409: {"description": "already registered, or the file is invalid", "content": PROBLEM},
        422: {"description": "the body is not a valid sensor", "content": PROBLEM},
    },
)
def add_sensor(
    ctx: Context,
    response: Response,
    info: Annotated[
        SensorInfo,
        Body(openapi_examples={"air quality sensor": {"value": EXAMPLE_SENSOR}}),
    ],
) -> SensorInfo:
    """Register a sensor; the worker picks it up at its next registry reload."""
    run_registry_action(lambda: ctx.registry.update(lambda sensors: add(sensors, info)))
    response.headers["Location"] = f"/v1/admin/sensors/{info.tenant}/{info.sensor_id}"
    return info


@router.patch(
    "/sensors/{tenant}/{sensor_id}",
    response_model=SensorInfo,
    responses={
        404: {"description": "not in the registry", "content": PROBLEM},
        409: {"description": "the registry file is invalid", "content": PROBLEM},
        422: {"description": "the change makes the sensor invalid", "content": PROBLEM},
    },
)
def change_sensor(
    ctx: Context,
    tenant: TenantPath,
    sensor_id: SensorPath,
    patch: Annotated[
        SensorChange,
        Body(
            openapi_examples={
                "move to a district": {"value": {"district": "oost"}},
                "clear the position": {"value": {"lat": None, "lon": None}},
            }
        ),
    ],
) -> SensorInfo:
    """Change some fields of a sensor (JSON merge patch: `null` clears a field)."""
    key = (tenant, sensor_id)
    fields = patch.model_dump(exclude_unset=True)
    return run_registry_action(
        lambda: ctx.registry.update(lambda sensors: change(sensors, key, fields))
    )[key]


@router.post(
    "/sensors/{tenant}/{sensor_id}/retire",
    response_model=SensorInfo,
    responses={
        404: {"description": "not in the registry", "content": PROBLEM},
        409: {"description": "the registry file is invalid", "content": PROBLEM},
    },
)
def retire_sensor(ctx: Context, tenant: TenantPath, sensor_id: SensorPath) -> SensorInfo:
    """Retire a sensor: it stays in the registry with `status: retired`; its data stays.

    Idempotent. Undo with a PATCH of `{"status": "active"}`.
    """
    key = (tenant, sensor_id)
    retired = {"status": "retired"}
    return run_registry_action(
        lambda: ctx.registry.update(lambda sensors: change(sensors, key, retired))
    )[key]


def run_registry_action(action: Callable[[], T]) -> T:
    """Run a registry action (sensors or experiments); its exceptions become problems with the
    right status."""
    try:
        return action()
    except NotConfigured as err:
        raise HTTPException(503, str(err)) from None
    except Conflict as err:
        raise HTTPException(409, str(err)) from None
    except Unknown as err:
        raise HTTPException(404, str(err)) from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise HTTPException(422, problems) from None
