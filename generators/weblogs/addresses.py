"""Client IP addresses that ``iptocc`` places in a given country, as the warehouse will.

Random probes find blocks allocated to a country (in LACNIC's space first for Latin American
countries); addresses are then drawn inside those blocks and checked one by one with the
same offline lookup the warehouse uses. Also: addresses inside known prefixes (crawlers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache

import iptocc
import numpy as np
import polars as pl

# LACNIC's /8 blocks: candidates for Latin American countries hit far more often there.
_LACNIC_SLASH8 = np.array([177, 179, 181, 186, 187, 189, 190, 191, 200, 201], dtype=np.int64)
_PUBLIC_SLASH8 = np.array([i for i in range(1, 224) if i not in (10, 127)], dtype=np.int64)
LACNIC_COUNTRIES = frozenset(
    ("AR", "BO", "BR", "BZ", "CL", "CO", "CR", "CU", "DO", "EC", "GT", "GY"),
) | frozenset(("HN", "HT", "MX", "NI", "PA", "PE", "PY", "SR", "SV", "TT", "UY", "VE"))
# First 16 bits of the RIRs' IPv6 /12 blocks (LACNIC 2800::/12 first).
_IPV6_LACNIC = (0x2800,)
_IPV6_ALL = (0x2400, 0x2600, 0x2800, 0x2A00, 0x2C00)


def _format_ipv4(values: np.ndarray) -> pl.Series:
    value = values.astype(np.int64)
    octets = pl.DataFrame(
        {"a": value >> 24, "b": (value >> 16) & 255, "c": (value >> 8) & 255, "d": value & 255}
    )
    return octets.select(pl.format("{}.{}.{}.{}", "a", "b", "c", "d")).to_series()


@cache
def _hex_groups() -> pl.Series:
    """The text of every 16-bit group, by value."""
    return pl.Series([f"{i:x}" for i in range(65536)], dtype=pl.String)


def _format_ipv6(groups: np.ndarray) -> pl.Series:
    """Groups (n, 8) → text; callers keep groups 2..7 non-zero so this is RFC 5952 form."""
    hexes = pl.DataFrame({f"g{i}": _hex_groups().gather(groups[:, i]) for i in range(8)})
    return hexes.select(pl.concat_str(pl.all(), separator=":")).to_series()


def _format_ipv6_prefix(prefix: np.ndarray) -> pl.Series:
    """A /32 prefix number → ``g0:g1::1``, an address that stands for the whole /32."""
    hexes = pl.DataFrame(
        {"a": _hex_groups().gather(prefix >> 16), "b": _hex_groups().gather(prefix & 0xFFFF)}
    )
    return hexes.select(pl.format("{}:{}::1", "a", "b")).to_series()


def _country_ids(text: pl.Series, countries: Sequence[str]) -> np.ndarray:
    """Index in ``countries`` of each address's country per ``iptocc``, -1 for any other."""
    codes = pl.Series(iptocc.country_code(text.to_list()), dtype=pl.String)
    ids = codes.replace_strict(list(countries), list(range(len(countries))), default=-1)
    return ids.cast(pl.Int64).to_numpy()


def _candidates(blocks: np.ndarray, rng: np.random.Generator, ipv6: bool) -> pl.Series:
    """One random address inside each block (IPv4 /20 or IPv6 /32 number)."""
    count = len(blocks)
    if ipv6:
        groups = np.empty((count, 8), dtype=np.int64)
        groups[:, 0], groups[:, 1] = blocks >> 16, blocks & 0xFFFF
        groups[:, 2:] = rng.integers(1, 65536, (count, 6))  # non-zero: RFC 5952 text as is
        return _format_ipv6(groups)
    low = (rng.integers(0, 16, count) << 8) | rng.integers(1, 255, count)  # no .0 / .255 hosts
    return _format_ipv4((blocks << 12) | low)


def _probe_round(
    countries: Sequence[str], spaces: list[np.ndarray], batch: int, rng: np.random.Generator,
    ipv6: bool,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``batch`` random blocks in each address space, and the country index of each."""
    top = np.concatenate([rng.choice(space, batch) for space in spaces])
    if ipv6:
        block = ((top + rng.integers(0, 16, len(top))) << 16) | rng.integers(0, 65536, len(top))
        return block, _country_ids(_format_ipv6_prefix(block), countries)
    address = (top << 24) | rng.integers(0, 1 << 24, len(top))
    return address >> 12, _country_ids(_format_ipv4(address), countries)


def _probe(
    countries: Sequence[str], targets: np.ndarray, rng: np.random.Generator, ipv6: bool
) -> list[np.ndarray]:
    """Blocks allocated to each country (IPv4 /20 or IPv6 /32 numbers), by random probes.

    Latin American countries are probed in LACNIC's space, where they hit far more often;
    every probe is classified against every wanted country, so one round serves them all.
    """
    latin = np.array([country in LACNIC_COUNTRIES for country in countries])
    found: list[np.ndarray] = [np.zeros(0, np.int64) for _ in countries]
    done = targets <= 0
    batch = 16_384
    for attempt in range(12):
        spaces = []
        if not done[latin].all():
            spaces.append(np.array(_IPV6_LACNIC) if ipv6 else _LACNIC_SLASH8)
        if not done[~latin].all() or attempt >= 3:  # rare Latin countries: look everywhere
            spaces.append(np.array(_IPV6_ALL) if ipv6 else _PUBLIC_SLASH8)
        block, ids = _probe_round(countries, spaces, batch, rng, ipv6)
        for i in np.flatnonzero(~done):  # per country
            hits = block[ids == i]
            merged = np.concatenate([found[i], hits])
            merged = merged[np.sort(np.unique(merged, return_index=True)[1])]  # keep order
            new = len(merged) - len(found[i])
            found[i] = merged
            # Enough, or mostly repeats: a small country, and this is what it has.
            done[i] = len(merged) >= targets[i] or (len(merged) >= 8 and new < 0.25 * len(hits))
        if attempt >= 7:  # about 4M probes: a code with no allocation at all
            done |= np.array([len(blocks) == 0 for blocks in found])
        if done.all():
            break
        batch = min(batch * 2, 1 << 20)
    return [blocks[: max(target, 0)] for blocks, target in zip(found, targets, strict=True)]


def _block_targets(need: np.ndarray, ipv6: bool) -> np.ndarray:
    """How many blocks to find per country for ``need`` addresses."""
    # A few dozen networks per country, more for big asks so that addresses stay distinct:
    # past 128 /20s, enough that at most ~1,500 of each one's 4,000 hosts are used (the
    # xlarge scale's 1.5M Argentine home addresses); an IPv6 /32 is big enough for anyone,
    # and rare: a few will do.
    blocks_for = np.maximum(np.clip(-(-need // 512), 16, 128), -(-need // 1_500))
    return np.full(len(need), 4) if ipv6 else blocks_for


def _addresses_in_blocks(
    countries: Sequence[str], need: np.ndarray, blocks: list[np.ndarray],
    rng: np.random.Generator, ipv6: bool,
) -> list[pl.Series]:  # fmt: skip
    """Distinct addresses per country drawn inside its blocks, up to ``need`` or a bit more."""
    found = [pl.Series(dtype=pl.String) for _ in countries]
    hit_rate = np.full(len(countries), 0.5)
    for _ in range(10):
        short = [i for i in range(len(countries)) if found[i].len() < need[i] and len(blocks[i])]
        if not short:
            break
        # Addresses inside the blocks found, checked again: a block can be split.
        asks = [int((need[i] - found[i].len()) / max(hit_rate[i], 0.02) * 1.3) + 16 for i in short]
        owner = np.repeat(np.array(short), asks)
        pick = np.concatenate(
            [
                blocks[i][rng.integers(0, len(blocks[i]), ask)]
                for i, ask in zip(short, asks, strict=True)
            ]
        )
        text = _candidates(pick, rng, ipv6)
        ids = _country_ids(text, countries)
        for i, ask in zip(short, asks, strict=True):  # per country
            hit = (owner == i) & (ids == i)
            hit_rate[i] = max(hit.sum() / ask, 0.001)
            found[i] = pl.concat([found[i], text.filter(pl.Series(hit))]).unique(
                maintain_order=True
            )
    return found


def sample_ips_by_country(
    wanted: Mapping[str, int], rng: np.random.Generator, ipv6: bool = False
) -> dict[str, list[str]]:
    """``sample_ips_in_country`` for several countries at once (a few lookups in all)."""
    countries = sorted(country for country, n in wanted.items() if n > 0)
    if not countries:
        return {}
    for country in countries:
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise ValueError(f"not an ISO-3166 alpha-2 country code: {country!r}")
    need = np.array([wanted[country] for country in countries], dtype=np.int64)
    blocks = _probe(countries, np.minimum(_block_targets(need, ipv6), need), rng, ipv6)
    found = _addresses_in_blocks(countries, need, blocks, rng, ipv6)
    out = {}
    for i, country in enumerate(countries):
        if found[i].len() < need[i]:
            kind = "IPv6" if ipv6 else "IPv4"
            raise ValueError(f"could not find {need[i]} {kind} addresses in {country}")
        out[country] = found[i].head(int(need[i])).to_list()
    return out


def sample_ips_in_country(
    country: str, n: int, rng: np.random.Generator, *, ipv6: bool = False
) -> list[str]:
    """``n`` distinct public addresses that ``iptocc`` places in ``country`` (ISO-2).

    Random probes find blocks allocated to the country (in LACNIC's space first for Latin
    American countries); addresses are then drawn inside those blocks, like the customers of
    a few ISPs, and each one is checked with the same offline lookup the warehouse uses, so
    the warehouse sees the same country. IPv6 addresses get a random non-zero interface part.
    """
    country = country.strip().upper()
    if n <= 0:
        return []
    return sample_ips_by_country({country: n}, rng, ipv6)[country]


def hosts_in_prefixes(prefixes: Sequence[str], n: int, rng: np.random.Generator) -> pl.Series:
    """``n`` random host addresses inside the given IPv4 CIDR prefixes."""
    bases, sizes = [], []
    for prefix in prefixes:
        network, bits = prefix.split("/")
        a, b, c, d = (int(octet) for octet in network.split("."))
        bases.append((a << 24) | (b << 16) | (c << 8) | d)
        sizes.append(1 << (32 - int(bits)))
    pick = rng.integers(0, len(prefixes), n)
    size = np.array(sizes)[pick]
    return _format_ipv4(np.array(bases)[pick] + 1 + (rng.random(n) * (size - 2)).astype(np.int64))
