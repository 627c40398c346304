-- The platform tables dropped before create_schema(drop_existing=True) creates them
-- again: those that reference others first, PLATFORM_TABLES in reverse (postgresql).
DROP TABLE IF EXISTS b2b.order_items;
DROP TABLE IF EXISTS b2b.orders;
DROP TABLE IF EXISTS b2b.platform_users;
DROP TABLE IF EXISTS b2b.customers;
DROP TABLE IF EXISTS b2b.supplier_products;
DROP TABLE IF EXISTS b2b.products;
DROP TABLE IF EXISTS b2b.suppliers;
DROP TABLE IF EXISTS b2b.companies;
