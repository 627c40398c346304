-- The platform tables dropped before create_schema(drop_existing=True) creates them
-- again: those that reference others first, PLATFORM_TABLES in reverse (sqlite).
DROP TABLE IF EXISTS order_items;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS platform_users;
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS supplier_products;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS suppliers;
DROP TABLE IF EXISTS companies;
