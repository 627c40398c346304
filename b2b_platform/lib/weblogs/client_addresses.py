"""The client of a combined-log line: its address or host name, vhost and user field.

Works on the text a line has before its timestamp (`head`, split by the parser). Nearly
every line is `client ident user`; the few with a vhost or an X-Forwarded-For list
before the client are resolved in Python, looking through the trusted proxies' entries
to the first address the client could not have forged.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable

import polars as pl

from b2b_platform.lib.settings import DEFAULT_TRUSTED_PROXIES

TrustedNetworks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

CLIENT_FIELDS = ("client_ip", "client_host", "vhost", "user_field")


def trusted_networks(cidrs: Iterable[str] | None = None) -> TrustedNetworks:
    """The networks of the trusted proxies, from CIDRs (DEFAULT_TRUSTED_PROXIES if None)."""
    return tuple(
        ipaddress.ip_network(cidr) for cidr in (DEFAULT_TRUSTED_PROXIES if cidrs is None else cidrs)
    )


def resolve_clients(fields: pl.DataFrame, trusted: TrustedNetworks) -> pl.DataFrame:
    """`fields` with the CLIENT_FIELDS of every line added, in the same row order.

    `fields` holds each line's `head` (its text before the timestamp), the number of
    spaces in it (`head_spaces`) and its first three space-separated parts (`head_parts`).
    """
    # `client ident user` is nearly every line; anything longer has a vhost or a proxy
    # list: parse every line the simple way, then overwrite the few others in place
    # (a scatter keeps the lines' order without sorting the chunk)
    parsed = _simple_clients(fields)
    complex_rows = fields.select(
        pl.arg_where((pl.col("head_spaces") != 2) | pl.col("head").str.contains('"', literal=True))
    ).to_series()
    if complex_rows.len():
        clients = _complex_clients(fields[complex_rows], trusted)
        parsed = parsed.with_columns(
            parsed[name].scatter(complex_rows, clients[name]) for name in CLIENT_FIELDS
        )
    return parsed


# IPv4 exactly as ipaddress accepts it (octets 0-255, no leading zeros), so a plain
# `999.999.999.999 - -` client is no IP; the regex costs no more than a loose one.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# IPv6 only by its shape: staging validates each distinct address with ipaddress
_IP = rf"^(?:{_OCTET}(?:\.{_OCTET}){{3}}|[0-9a-fA-F]*:[0-9a-fA-F:.]+)$"


def _is_ip(expr: pl.Expr) -> pl.Expr:
    return expr.str.contains(_IP)


def _simple_clients(frame: pl.DataFrame) -> pl.DataFrame:
    """`client ident user`: the common case, one token before ident."""
    client = pl.col("head_parts").struct.field("field_0")
    is_ip = _is_ip(client)
    return frame.with_columns(
        client_ip=pl.when(is_ip).then(client),
        client_host=pl.when(~is_ip).then(client),
        vhost=pl.lit(None, dtype=pl.String),
        user_field=pl.col("head_parts").struct.field("field_2"),
    )


def _complex_clients(frame: pl.DataFrame, trusted: TrustedNetworks) -> pl.DataFrame:
    """A vhost, or an X-Forwarded-For list (quoted or not), before the client address.

    What comes before `ident user` is resolved in Python (ipaddress), once per distinct
    text: these lines are few, and a client's chain repeats on all its requests.
    """
    # a proxy's own address recurs in every chain through it: check each entry once
    verdict = functools.cache(functools.partial(_verdict, trusted=_as_masks(trusted)))
    head_tokens = pl.col("head").str.split(" ")
    keys = frame.select(
        user_field=head_tokens.list.get(-1, null_on_oob=True),
        prefix=head_tokens.list.head(head_tokens.list.len() - 2).list.join(" "),
    )
    resolved = pl.DataFrame(
        [(text, *_resolve_prefix(text, verdict)) for text in keys["prefix"].drop_nulls().unique()],
        schema={name: pl.String for name in ("prefix", "client_ip", "client_host", "vhost")},
        orient="row",
    )
    # the caller scatters these rows back by position: keep the input's order
    return keys.join(resolved, on="prefix", how="left", maintain_order="left")


_ADDRESS_SHAPE = re.compile(r"[0-9.]+|[0-9a-fA-F]*:[0-9a-fA-F:.]+")


def _resolve_prefix(
    prefix: str, verdict: Callable[[str], bool | None]
) -> tuple[str | None, str | None, str | None]:
    """(client_ip, client_host, vhost) from what a line has before `ident user`.

    A leading host name that is not part of an address list is the vhost. The rest is
    the chain the request came through, the server's peer last. Each proxy appends the
    address it got the request from, so from the right, the first address outside the
    trusted networks is the client; entries left of it were sent by the client itself
    and could name any address (and so any country). If that first untrusted entry is
    no valid address, the client IP is unknown: looking further left would believe the
    client again. A chain of trusted proxies only started inside: its left-most entry.
    """
    tokens = prefix.split()
    vhost = None
    if len(tokens) >= 2 and _is_vhost(tokens[0]):
        vhost, prefix = tokens[0], " ".join(tokens[1:])
    # str methods: 5x faster than re.split here
    chain = prefix.replace('"', " ").replace(",", " ").split()
    for entry in reversed(chain):
        trusted = verdict(entry)
        if not trusted:
            return (*_ip_or_host(entry, is_address=trusted is not None), vhost)
    if not chain:
        return None, None, vhost
    return (*_ip_or_host(chain[0], is_address=True), vhost)


def _is_vhost(token: str) -> bool:
    # a list's entries end in a comma or are quoted; an address is never a vhost
    return token[0] != '"' and token[-1] != "," and not _ADDRESS_SHAPE.fullmatch(token)


# (IP version, network as an integer, netmask as an integer) of each trusted network:
# integer tests take a tenth of the time of `address in network`
_Masks = tuple[tuple[int, int, int], ...]


def _as_masks(trusted: TrustedNetworks) -> _Masks:
    return tuple((n.version, int(n.network_address), int(n.netmask)) for n in trusted)


def _verdict(entry: str, trusted: _Masks) -> bool | None:
    """Whether an entry is a trusted proxy's address; None if it is no IP address."""
    try:  # the family's own class: ip_address tries IPv4 first, and fails slowly
        address = ipaddress.IPv6Address(entry) if ":" in entry else ipaddress.IPv4Address(entry)
    except ValueError:
        return None
    # a dual-stack proxy logs an IPv4 peer as ::ffff:a.b.c.d
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    version, value = address.version, int(address)
    return any(version == v and value & mask == network for v, network, mask in trusted)


def _ip_or_host(entry: str, *, is_address: bool) -> tuple[str | None, str | None]:
    """(client_ip, client_host) of the client's entry, as written in the log."""
    return (entry, None) if is_address else (None, entry)
