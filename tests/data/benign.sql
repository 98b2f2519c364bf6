-- Daily production work that must pass pgwarden's built-in policy on a production
-- target without a refusal (tests/it/enforce_benign.rs replays it in one session, in
-- order, as the owner of the tables, with every hold turned into a block). Entries
-- are separated by lines '--@@'. psql's \d family, pg_dump/pg_restore and ORM
-- migrations run as real tools in tools_production.rs and tools_migrations.rs.
SELECT count(*) FROM customers
--@@
SELECT * FROM customers WHERE id = 1
--@@
SELECT c.name, count(o.*) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY 1 ORDER BY 2 DESC LIMIT 10
--@@
SELECT now(), current_user, current_database(), version()
--@@
SHOW work_mem
--@@
SET statement_timeout = '5s'
--@@
SET lock_timeout = '1s'
--@@
SET TIME ZONE 'UTC'
--@@
SELECT set_config('TimeZone', 'UTC', false)
--@@
SELECT pg_catalog.set_config('search_path', 'public', false)
--@@
SET search_path = public
--@@
SET application_name = 'nightly-report'
--@@
RESET statement_timeout
--@@
BEGIN
--@@
INSERT INTO customers (name) VALUES ('new customer') RETURNING id
--@@
UPDATE customers SET name = 'renamed' WHERE id = 2
--@@
SAVEPOINT before_cleanup
--@@
DELETE FROM orders WHERE id = 3
--@@
ROLLBACK TO SAVEPOINT before_cleanup
--@@
RELEASE SAVEPOINT before_cleanup
--@@
COMMIT
--@@
INSERT INTO customers (id, name) VALUES (1, 'dup') ON CONFLICT DO NOTHING
--@@
INSERT INTO orders (customer_id, qty) SELECT 1, 5
--@@
PREPARE by_id(int) AS SELECT * FROM customers WHERE id = $1
--@@
EXECUTE by_id(1)
--@@
DEALLOCATE by_id
--@@
SELECT nextval('customers_id_seq')
--@@
SELECT pg_try_advisory_lock(42)
--@@
SELECT pg_advisory_unlock(42)
--@@
EXPLAIN SELECT * FROM orders WHERE customer_id = 1
--@@
EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM orders WHERE customer_id = 1
--@@
COPY customers TO STDOUT
--@@
COPY (SELECT id, name FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)
--@@
CREATE TABLE invoices (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id int REFERENCES orders (id), total numeric(10,2) NOT NULL)
--@@
CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id)
--@@
CREATE INDEX IF NOT EXISTS customers_name_idx ON customers (name)
--@@
ALTER TABLE customers ADD COLUMN active boolean NOT NULL DEFAULT true
--@@
ALTER TABLE customers ADD COLUMN note text
--@@
ALTER TABLE customers ALTER COLUMN note SET DEFAULT ''
--@@
ALTER TABLE customers ALTER COLUMN name TYPE varchar(120)
--@@
ALTER TABLE invoices ALTER COLUMN total TYPE numeric(14,2)
--@@
ALTER TABLE orders ADD CONSTRAINT qty_positive CHECK (qty > 0) NOT VALID
--@@
ALTER TABLE orders VALIDATE CONSTRAINT qty_positive
--@@
CREATE VIEW big_orders AS SELECT * FROM orders WHERE qty > 10
--@@
COMMENT ON TABLE customers IS 'people who buy things'
--@@
ANALYZE customers
--@@
VACUUM orders
--@@
CREATE TEMP TABLE report AS SELECT customer_id, sum(qty) AS qty FROM orders GROUP BY 1
--@@
SELECT * FROM report ORDER BY qty DESC
--@@
TRUNCATE report
--@@
LISTEN order_events
--@@
NOTIFY order_events, 'refresh'
--@@
UNLISTEN *
--@@
DISCARD ALL
