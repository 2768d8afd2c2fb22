-- Bulk members for the keyset-pagination timing, inserted straight into orgql's tables after
-- orgql's migrations ran and seed.mjs created `bench-keyset`, `keyset-small` and
-- `keyset-large` through the API. 99,999 users `kl-000001` … `kl-099999` (with
-- bench-keyset's password hash) join keyset-large (100,000 members with bench-keyset);
-- `kl-000001` … `kl-000099` also join keyset-small (100 members).
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO account (kind, username, username_key, created_at)
SELECT 'USER', 'kl-' || lpad(g::text, 6, '0'), 'kl-' || lpad(g::text, 6, '0'), now()
FROM generate_series(1, 99999) AS g;
INSERT INTO user_account (account_id, email, email_key, password_hash)
SELECT a.id, a.username || '@bench.example', a.username_key || '@bench.example',
       (SELECT u.password_hash FROM user_account u JOIN account k ON k.id = u.account_id
        WHERE k.username_key = 'bench-keyset')
FROM account a WHERE a.username_key LIKE 'kl-%';
INSERT INTO membership (organization_id, user_id, username_key, role, default_dataset_role, joined_at, username)
SELECT o.id, a.id, a.username_key, 'MEMBER', NULL, now(), a.username
FROM account a CROSS JOIN account o
WHERE a.username_key LIKE 'kl-%' AND o.username_key = 'keyset-large';
INSERT INTO membership (organization_id, user_id, username_key, role, default_dataset_role, joined_at, username)
SELECT o.id, a.id, a.username_key, 'MEMBER', NULL, now(), a.username
FROM account a CROSS JOIN account o
WHERE a.username_key LIKE 'kl-%' AND a.username_key <= 'kl-000099' AND o.username_key = 'keyset-small';
COMMIT;
-- Fresh planner statistics and visibility maps for every table (the seeding just filled
-- them): as autovacuum leaves a database in time, and what index-only scans rely on.
VACUUM ANALYZE;
