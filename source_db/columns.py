"""Column kinds of every platform table, for type-exact extraction."""

from __future__ import annotations

# kind: int | text | bool | timestamp | date | decimal
PLATFORM_COLUMNS: dict[str, dict[str, str]] = {
    "companies": {
        "company_id": "int", "cuit": "text", "legal_name": "text", "industry": "text",
        "country_code": "text", "province": "text", "city": "text",
        "created_at": "timestamp", "updated_at": "timestamp",
    },
    "suppliers": {
        "supplier_id": "int", "company_id": "int", "active": "bool",
        "created_at": "timestamp", "updated_at": "timestamp",
    },
    "products": {
        "product_id": "int", "sku": "text", "name": "text", "category": "text", "brand": "text",
        "unit": "text", "created_at": "timestamp", "updated_at": "timestamp",
    },
    "supplier_products": {
        "supplier_id": "int", "product_id": "int", "price": "decimal", "currency": "text",
        "valid_from": "date", "valid_to": "date",
    },
    "customers": {
        "customer_id": "int", "document_type": "text", "document_number": "text",
        "full_name": "text", "date_of_birth": "date", "email": "text", "phone": "text",
        "province": "text", "city": "text", "created_at": "timestamp", "updated_at": "timestamp",
    },
    "platform_users": {
        "user_id": "int", "company_id": "int", "username": "text", "email": "text",
        "role": "text", "created_at": "timestamp", "updated_at": "timestamp",
    },
    "orders": {
        "order_id": "int", "order_number": "text", "company_id": "int", "customer_id": "int",
        "user_id": "int", "ordered_at": "timestamp", "status": "text", "currency": "text",
        "shipping_province": "text", "shipping_city": "text", "updated_at": "timestamp",
    },
    "order_items": {
        "order_id": "int", "line_number": "int", "product_id": "int", "supplier_id": "int",
        "quantity": "int", "unit_price": "decimal", "discount_pct": "decimal",
    },
}  # fmt: skip


def extraction_columns(table: str, alias: str = "") -> str:
    """SELECT list that reads temporal and money columns as text in both dialects.

    Raw keeps values exactly as the source holds them (SQLite stores whatever text it
    was given); staging parses them and quarantines what does not parse.
    """
    prefix = f"{alias}." if alias else ""
    parts = []
    for column, kind in PLATFORM_COLUMNS[table].items():
        if kind in ("timestamp", "date", "decimal"):
            parts.append(f"CAST({prefix}{column} AS TEXT) AS {column}")
        elif kind == "bool":
            parts.append(f"CAST({prefix}{column} AS INTEGER) AS {column}")
        else:
            parts.append(f"{prefix}{column}")
    return ", ".join(parts)


def raw_select_list(table: str) -> str:
    """DuckDB SELECT list giving raw tables fixed types whatever the driver inferred.

    A column that is NULL in every row arrives from SQLite typed as an integer; raw
    keeps text as VARCHAR and ids and flags as BIGINT so staging SQL always binds.
    """
    parts = []
    for column, kind in PLATFORM_COLUMNS[table].items():
        target = "BIGINT" if kind in ("int", "bool") else "VARCHAR"
        parts.append(f'CAST("{column}" AS {target}) AS "{column}"')
    return ", ".join(parts)
