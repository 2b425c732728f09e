"""What the registry brings to a study: the export-control measures a scenario file names
by id (`policies.controls`, from the tracker) as bans or licence quotas, and the active
commitments of the agreements (`agreements: active`) as secured supply to their recipients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from critmin.errors import InputError


def control_restrictions(controls, cal, codes, in_market) -> tuple[list, list]:
    """(bans, quotas) on `cal`'s market from the named measures that cover its commodity: the
    measure's country restricts exports to its scope (every destination, or the one named),
    as a ban or as a quota keeping `fraction` of base exports."""
    from critmin.market import Ban, Quota
    from critmin.registry.controls import measure

    bans, quotas = [], []
    for spec in controls:
        item = measure(spec.measure)
        if cal.commodity not in item["commodities"]:
            continue
        exporter = codes(item["country"])[0][0]
        targets, _ = codes(None if item["scope"] == "all" else item["scope"])
        targets = in_market(cal, targets, False) if targets else None
        if not _acts(cal, exporter, targets):  # no base flow left (the measure already bites)
            continue
        if spec.model == "ban":
            bans.append(Ban(exporter, targets, False))  # no base flow: nothing to restrict
        else:
            quotas.append(Quota(exporter, spec.fraction, targets, False, False))
    return bans, quotas


def _acts(cal, exporter: str, targets) -> bool:
    """Whether `exporter` has base exports to `targets` (None = anyone) in `cal`."""
    if exporter not in cal.countries:
        return False
    row = cal.traded[cal.index(exporter)].copy()
    row[cal.index(exporter)] = False
    if targets is None:
        return bool(row.any())
    return any(row[cal.index(t)] for t in targets if t in cal.countries)


def secured_supply(cal, on: dt.date | None = None) -> list[dict[str, Any]]:
    """Active commitments (signed or in force, with tonnes, in force in `on`'s year) of
    `cal`'s commodity to a recipient in its market: commodity, recipient, tonnes, agreement."""
    from critmin.registry.coverage import reserved_flows
    from critmin.registry.store import Registry

    year = (on or dt.date.today()).year
    flows = reserved_flows(Registry().records(), year)
    flows = flows[(flows["commodity"] == cal.commodity) & flows["recipient"].isin(cal.countries)]
    return [
        {
            "commodity": r.commodity,
            "recipient": r.recipient,
            "tonnes": float(r.tonnes),
            "agreement": r.agreement,
        }
        for r in flows.itertuples()
    ]


def secured_releases(cal, on: dt.date | None = None) -> list:
    """The secured supply as fixed extra supply to each recipient, like a stockpile release
    (the committed tonnes reach the recipient whatever the price)."""
    from critmin.market import Release

    out = []
    for row in secured_supply(cal, on):
        if row["tonnes"] <= 0:
            raise InputError(f"agreement {row['agreement']}: a commitment of no tonnes")
        out.append(Release(row["recipient"], row["tonnes"]))
    return out
