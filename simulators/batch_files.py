"""Sample batch files: Billing charge records (GBK fixed width) and their faulty variants, for tests,
demos and the bench. Files are written as a stream: a million records never sit in memory.

``python -m simulators.batch_files OUT.dat 100000`` writes a Billing charge file.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

CHARGE_NAMES = [
    "月租费",
    "国内通话费",
    "短信费",
    "流量费",
    "来电显示",
    "彩铃功能费",
    "国际漫游费",
    "宽带月租",
    "IPTV 月租",
    "5G套餐费",
]
CHARGE_LAYOUT = "config/layouts/billing_charge_record.yaml"


def _pad(text: str, length: int, encoding: str) -> bytes:
    raw = text.encode(encoding)
    if len(raw) > length:
        raise ValueError(f"{text!r} is {len(raw)} bytes in {encoding}, the field holds {length}")
    return raw + b" " * (length - len(raw))


def charge_lines(
    count: int, *, encoding: str = "gbk", seed: int = 6, day: date = date(2024, 5, 31), province: str = "571"
) -> Iterator[tuple[bytes, int]]:
    """Yield ``(detail line, amount in fen)`` for ``count`` charge records (without line endings)."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
    names = [_pad(n, 20, encoding) for n in CHARGE_NAMES]
    cycle = day.strftime("%Y%m").encode()
    when = day.strftime("%Y%m%d").encode()
    for n in range(1, count + 1):
        fen = rng.randrange(0, 50_000)
        tax = fen * 6 // 100
        code = rng.randrange(len(names))
        line = b"".join(
            (
                b"D",
                f"C{province}{n:015d}".encode().ljust(20),
                f"A{n % 500_000:015d}".encode(),
                f"139{n % 100_000_000:08d}".encode(),
                f"CHG{code:05d}".encode(),
                names[code],
                f"{fen:012d}".encode(),
                b"CNY",
                cycle,
                when,
                f"{tax:010d}".encode(),
                b" " * 5,
            )
        )
        yield line, fen


def header_line(day: date = date(2024, 5, 31), province: str = "571", seq: int = 1) -> bytes:
    """The H record."""
    return f"H{province}{day:%Y%m%d}{seq:04d}{'BILLING':<10}{'':14}".encode()


def trailer_line(count: int, total_fen: int) -> bytes:
    """The T record: detail count and amount total (implied 2 decimals)."""
    return f"T{count:010d}{total_fen:016d}{'':13}".encode()


def write_charge_file(
    path: Path,
    count: int,
    *,
    encoding: str = "gbk",
    seed: int = 6,
    eol: bytes = b"\r\n",
    bad_records: dict[int, bytes] | None = None,
    trailer: bool = True,
    count_delta: int = 0,
    total_delta: int = 0,
) -> Decimal:
    """Write a Billing charge file of ``count`` records; return its amount total.

    ``bad_records`` replaces record N's line (to test rejects); ``trailer=False`` truncates the file;
    ``count_delta``/``total_delta`` make the trailer lie.
    """
    total = 0
    with path.open("wb", buffering=1024 * 1024) as out:
        out.write(header_line() + eol)
        for n, (line, fen) in enumerate(charge_lines(count, encoding=encoding, seed=seed), 1):
            if bad_records and n in bad_records:
                line = bad_records[n]
            else:
                total += fen
            out.write(line + eol)
        if trailer:
            out.write(trailer_line(count + count_delta, total + total_delta) + eol)
    return Decimal(total).scaleb(-2)


def main(argv: list[str] | None = None) -> int:
    """Command line: write a charge file."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print("usage: python -m simulators.batch_files OUT.dat COUNT", file=sys.stderr)
        return 2
    total = write_charge_file(Path(args[0]), int(args[1]))
    print(f"wrote {args[1]} records, amount total {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
