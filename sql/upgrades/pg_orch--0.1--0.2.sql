-- pg_orch 0.1 -> 0.2. Brings a 0.1 catalog to exactly what a fresh 0.2
-- install makes (test/sql/upgrade.sql compares the two), keeping the data.
\echo Use "ALTER EXTENSION pg_orch UPDATE" to load this file. \quit
