"""Shared steps of the integration tests, driven through the HTTP API."""

from __future__ import annotations

from typing import Any

from tests.conftest import wait_for_photo
from tests.support import photo


async def new_case(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"sex": "male", "estimated_age": 50, "found_place": "G318 roadside", **fields}
    response = await client.post("/api/cases", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def new_notice(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "李四", "sex": "male", "source": "family", **fields}
    response = await client.post("/api/notices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def upload(
    client: Any,
    headers: dict[str, str],
    owner: str,
    owner_id: int,
    data: bytes,
    *,
    filename: str = "photo.jpg",
    wait: bool = True,
    **form: str,
) -> dict[str, Any]:
    response = await client.post(
        f"/api/{owner}s/{owner_id}/photos",
        files={"file": (filename, data, "application/octet-stream")},
        data=form,
        headers=headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    return await wait_for_photo(client, headers, body["id"]) if wait else body


async def upload_file(
    client: Any, headers: dict[str, str], owner: str, owner_id: int, rel: str, **form: str
) -> dict[str, Any]:
    return await upload(
        client, headers, owner, owner_id, photo(rel), filename=rel.rsplit("/", 1)[-1], **form
    )


async def candidates(
    client: Any, headers: dict[str, str], owner: str, owner_id: int
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/{owner}s/{owner_id}/candidates", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def submit_candidate(
    client: Any,
    headers: dict[str, str],
    *,
    kind: str,
    values: dict[str, Any],
    attachment: tuple[str, bytes] | None = None,
    expect: int | tuple[int, ...] = (200, 201),
    **fields: Any,
) -> dict[str, Any]:
    """POST /api/candidates (multipart); ``fields``: case_id, notice_id, notice (dict), …"""
    import json

    form = {"kind": kind, "values": json.dumps(values)}
    for name, value in fields.items():
        form[name] = json.dumps(value) if isinstance(value, dict) else str(value)
    # Every field as a multipart part (a filename of None makes a plain field), so the
    # body is multipart/form-data with or without an attachment.
    parts: list[tuple[str, tuple[str | None, Any, str | None]]] = [
        (name, (None, value, None)) for name, value in form.items()
    ]
    if attachment is not None:
        parts.append(("attachment", (attachment[0], attachment[1], "application/octet-stream")))
    response = await client.post("/api/candidates", files=parts, headers=headers)
    codes = expect if isinstance(expect, tuple) else (expect,)
    assert response.status_code in codes, response.text
    return dict(response.json())


async def decide(
    client: Any, headers: dict[str, str], candidate_id: int, decision: str, reason: str = "ok"
) -> Any:
    return await client.post(
        f"/api/candidates/{candidate_id}/decision",
        json={"decision": decision, "reason": reason},
        headers=headers,
    )


async def family_confirmation(
    client: Any, headers: dict[str, str], candidate_id: int, **fields: Any
) -> dict[str, Any]:
    body = {
        "confirmer_name": "李大妈",
        "relationship": "mother",
        "method": "video_call",
        **fields,
    }
    response = await client.post(
        f"/api/candidates/{candidate_id}/family-confirmations", json=body, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def admitted_days_ago(case_id: int, days: float) -> None:
    """Test set-up: the case was admitted (and placed in the station) ``days`` ago,
    so rules that need time in care (stranded after 10 days, settlement after 3
    months) can be reached."""
    from datetime import timedelta

    from rescue import clock
    from rescue.cases.tables import Case
    from rescue.placements.tables import Placement

    when = clock.now() - timedelta(days=days)
    await Case.update({Case.admitted_at: when}).where(Case.id == case_id)
    await Placement.update({Placement.started_at: when}).where(Placement.case == case_id)


async def stored_faces(
    vectors: Any, *, case: int | None = None, notice: int | None = None
) -> tuple[int, list[int]]:
    """One processed photo of a case or a notice with a face per row of ``vectors``
    ((n, 128) encodings, the model in use), written straight to the tables (no
    image, no worker): (photo id, face ids in the rows' order)."""
    import secrets

    import numpy as np

    from rescue import clock
    from rescue.matching.embedding import MODEL_NAME
    from rescue.photos.tables import Face, Photo

    (photo,) = await Photo.insert(
        Photo(
            case=case,
            notice=notice,
            object_key=f"test/{secrets.token_hex(8)}",
            sha256=secrets.token_hex(32),
            size_bytes=1,
            media_type="image/jpeg",
            width=1,
            height=1,
            status="processed",
            encoded_at=clock.now(),
        )
    ).returning(Photo.id)
    inserted = await Face.insert(
        *[
            Face(
                photo=photo["id"],
                case=case,
                notice=notice,
                top=0,
                right=1,
                bottom=1,
                left=0,
                encoding=np.asarray(v, dtype="<f8").tobytes(),
                model=MODEL_NAME,  # galleries hold only the model in use
            )
            for v in vectors
        ]
    ).returning(Face.id)
    return int(photo["id"]), [int(r["id"]) for r in inserted]
