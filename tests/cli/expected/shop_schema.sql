CREATE SCHEMA IF NOT EXISTS reporting;

CREATE SCHEMA IF NOT EXISTS shop;

CREATE DOMAIN shop.price AS numeric(12,2) CONSTRAINT price_check CHECK ((VALUE >= (0)::numeric));

CREATE TYPE shop.state AS ENUM ('new', 'paid', 'shipped');

CREATE OR REPLACE PROCEDURE shop.archive()
 LANGUAGE sql
AS $procedure$ DELETE FROM shop.orders WHERE state = 'shipped' $procedure$;

CREATE OR REPLACE FUNCTION shop.open_orders()
 RETURNS bigint
 LANGUAGE sql
 STABLE
AS $function$ SELECT count(*) FROM shop.orders WHERE state <> 'shipped' $function$;

CREATE OR REPLACE FUNCTION shop.touch()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  NEW.created_at := now();
  RETURN NEW;
END $function$;

CREATE SEQUENCE shop.orders_id_seq AS integer INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1;

CREATE SEQUENCE shop.ticket AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 100 CACHE 1;

CREATE TABLE public.shop_settings (
    key text NOT NULL,
    value text NOT NULL
);

CREATE TABLE shop.customers (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    email text NOT NULL,
    name text DEFAULT 'anonymous'::text
);

CREATE TABLE shop.orders (
    id integer DEFAULT nextval('shop.orders_id_seq'::regclass) NOT NULL,
    customer_id bigint NOT NULL,
    state shop.state DEFAULT 'new'::shop.state NOT NULL,
    total shop.price NOT NULL,
    total_cents bigint GENERATED ALWAYS AS ((((total)::numeric * (100)::numeric))::bigint) STORED,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

ALTER TABLE public.shop_settings ADD CONSTRAINT shop_settings_pkey PRIMARY KEY (key);

ALTER TABLE shop.customers ADD CONSTRAINT customers_email_key UNIQUE (email);

ALTER TABLE shop.customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

ALTER TABLE shop.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);

ALTER TABLE shop.orders ADD CONSTRAINT orders_total_check CHECK (((total)::numeric < (1000000)::numeric));

CREATE VIEW shop.open AS
 SELECT id,
    customer_id
   FROM shop.orders
  WHERE (state <> 'shipped'::shop.state);

CREATE VIEW shop.open_count AS
 SELECT count(*) AS n
   FROM shop.open;

CREATE MATERIALIZED VIEW shop.totals AS
 SELECT customer_id,
    sum((total)::numeric) AS total
   FROM shop.orders
  GROUP BY customer_id;

CREATE INDEX orders_created_at_idx ON shop.orders USING btree (created_at DESC) WHERE (state <> 'shipped'::shop.state);

CREATE UNIQUE INDEX totals_customer ON shop.totals USING btree (customer_id);

ALTER TABLE shop.orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES shop.customers(id) ON DELETE CASCADE;

CREATE TRIGGER orders_touch BEFORE UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION shop.touch();

ALTER SEQUENCE shop.orders_id_seq OWNED BY shop.orders.id;
