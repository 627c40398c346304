-- B2B platform source schema (docs/data-contracts.md, "Sources"), PostgreSQL dialect (schema b2b).
-- orders and order_items carry no enforced foreign keys on purpose: the legacy
-- order service writes them without, which is where orphans come from.
CREATE SCHEMA IF NOT EXISTS b2b;

CREATE TABLE IF NOT EXISTS b2b.companies (
    company_id   INTEGER PRIMARY KEY,
    cuit         TEXT NOT NULL,
    legal_name   TEXT NOT NULL,
    industry     TEXT,
    country_code CHAR(2) NOT NULL,
    province     TEXT,
    city         TEXT,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS b2b.suppliers (
    supplier_id INTEGER PRIMARY KEY,
    company_id  INTEGER NOT NULL REFERENCES b2b.companies (company_id),
    active      BOOLEAN NOT NULL,
    created_at  TIMESTAMP,
    updated_at  TIMESTAMP
);

CREATE TABLE IF NOT EXISTS b2b.products (
    product_id INTEGER PRIMARY KEY,
    sku        TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    category   TEXT NOT NULL,
    brand      TEXT,
    unit       TEXT NOT NULL,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS b2b.supplier_products (
    supplier_id INTEGER REFERENCES b2b.suppliers (supplier_id),
    product_id  INTEGER REFERENCES b2b.products (product_id),
    price       NUMERIC(14, 2) NOT NULL,
    currency    CHAR(3) NOT NULL DEFAULT 'ARS',
    valid_from  DATE NOT NULL,
    valid_to    DATE,
    PRIMARY KEY (supplier_id, product_id, valid_from)
);

CREATE TABLE IF NOT EXISTS b2b.customers (
    customer_id     INTEGER PRIMARY KEY,
    document_type   TEXT NOT NULL,
    document_number TEXT NOT NULL,
    full_name       TEXT NOT NULL,
    date_of_birth   DATE,
    email           TEXT,
    phone           TEXT,
    province        TEXT,
    city            TEXT,
    created_at      TIMESTAMP,
    updated_at      TIMESTAMP
);

CREATE TABLE IF NOT EXISTS b2b.platform_users (
    user_id    INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES b2b.companies (company_id),
    username   TEXT NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at TIMESTAMP,
    updated_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS b2b.orders (
    order_id          INTEGER PRIMARY KEY,
    order_number      TEXT NOT NULL UNIQUE,
    company_id        INTEGER NOT NULL,
    customer_id       INTEGER NOT NULL,
    user_id           INTEGER,
    ordered_at        TIMESTAMP NOT NULL,
    status            TEXT NOT NULL,
    currency          CHAR(3) NOT NULL,
    shipping_province TEXT,
    shipping_city     TEXT,
    updated_at        TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS b2b.order_items (
    order_id     INTEGER NOT NULL,
    line_number  INTEGER NOT NULL,
    product_id   INTEGER NOT NULL,
    supplier_id  INTEGER NOT NULL,
    quantity     INTEGER NOT NULL,
    unit_price   NUMERIC(14, 2) NOT NULL,
    discount_pct NUMERIC(5, 2) NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_number)
);

CREATE INDEX IF NOT EXISTS orders_ordered_at ON b2b.orders (ordered_at);
