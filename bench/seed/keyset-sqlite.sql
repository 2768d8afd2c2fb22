-- The same bulk members as keyset-postgres.sql, for orgql's SQLite file (run with the
-- sqlite3 CLI while orgql is stopped). Timestamps copy the format orgql itself wrote.
.bail on
PRAGMA foreign_keys = ON;
BEGIN;
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 99999)
INSERT INTO account (kind, username, username_key, created_at)
SELECT 'USER', 'kl-' || substr('000000' || n, -6), 'kl-' || substr('000000' || n, -6),
       (SELECT created_at FROM account WHERE username_key = 'bench-keyset')
FROM g;
INSERT INTO user_account (account_id, email, email_key, password_hash)
SELECT a.id, a.username || '@bench.example', a.username_key || '@bench.example',
       (SELECT u.password_hash FROM user_account u JOIN account k ON k.id = u.account_id
        WHERE k.username_key = 'bench-keyset')
FROM account a WHERE a.username_key LIKE 'kl-%';
INSERT INTO membership (organization_id, user_id, username_key, role, default_dataset_role, joined_at, username)
SELECT o.id, a.id, a.username_key, 'MEMBER', NULL,
       (SELECT m.joined_at FROM membership m JOIN account k ON k.id = m.user_id
        WHERE k.username_key = 'bench-keyset' LIMIT 1),
       a.username
FROM account a CROSS JOIN account o
WHERE a.username_key LIKE 'kl-%' AND o.username_key = 'keyset-large';
INSERT INTO membership (organization_id, user_id, username_key, role, default_dataset_role, joined_at, username)
SELECT o.id, a.id, a.username_key, 'MEMBER', NULL,
       (SELECT m.joined_at FROM membership m JOIN account k ON k.id = m.user_id
        WHERE k.username_key = 'bench-keyset' LIMIT 1),
       a.username
FROM account a CROSS JOIN account o
WHERE a.username_key LIKE 'kl-%' AND a.username_key <= 'kl-000099' AND o.username_key = 'keyset-small';
COMMIT;
