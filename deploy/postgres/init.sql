-- Run once by the postgres image on an empty data volume
-- (/docker-entrypoint-initdb.d). Each service owns its own database;
-- POSTGRES_USER=vcredit owns them all. Tables are created by `vcredit migrate`.
CREATE DATABASE vcredit_registry OWNER vcredit;
CREATE DATABASE vcredit_scoring OWNER vcredit;
CREATE DATABASE vcredit_loans OWNER vcredit;
CREATE DATABASE vcredit_risk OWNER vcredit;
CREATE DATABASE vcredit_notify OWNER vcredit;
