-- Runs once, when the PostgreSQL volume is created: one database per node next to the broker's
-- (POSTGRES_DB). A real federation has each node's database at its own association.
CREATE DATABASE tandem_ind_assoc OWNER tandem;
CREATE DATABASE tandem_startup_net OWNER tandem;
CREATE DATABASE tandem_chamber OWNER tandem;
