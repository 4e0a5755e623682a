-- First start of the compose stack's PostgreSQL: pgvector for avl's vector store, and
-- a database for the application's data that avl answers questions about.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE DATABASE app OWNER avl;
