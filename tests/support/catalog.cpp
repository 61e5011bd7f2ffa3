#include "catalog.hpp"

#include "harness.hpp"

namespace pgkit_test {

std::string schema_catalog(const std::string& url) {
  // Only functions that exist on PostgreSQL 13 and keep their output across majors.
  static const char* const sql = R"sql(
WITH s AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'),
r AS (
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relacl, c.relrowsecurity, s.nspname
  FROM pg_class c JOIN s ON s.oid = c.relnamespace)
SELECT coalesce(string_agg(line, E'\n' ORDER BY line), '') FROM (
  SELECT format('schema %I %s', s.nspname, coalesce(n.nspacl::text, '')) AS line
  FROM s JOIN pg_namespace n USING (oid)
  UNION ALL
  SELECT format('relation %I.%I kind %s persistence %s rls %s acl %s', nspname, relname, relkind,
                relpersistence, relrowsecurity, coalesce(relacl::text, ''))
  FROM r WHERE relkind NOT IN ('i', 'I')
  UNION ALL
  SELECT format('column %I.%I %s %I %s%s%s', r.nspname, r.relname,
                row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum), a.attname,
                format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attnotnull THEN ' not null' ELSE '' END,
                coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''))
  FROM r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum
  UNION ALL
  SELECT format('constraint %I.%s %I %s', s.nspname,
                coalesce(c.conrelid::regclass::text, c.contypid::regtype::text), c.conname,
                pg_get_constraintdef(c.oid))
  FROM pg_constraint c JOIN s ON s.oid = c.connamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN r ON r.oid = i.indexrelid
  UNION ALL
  SELECT 'function ' || CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid)
                             ELSE p.oid::regprocedure::text END
  FROM pg_proc p JOIN s ON s.oid = p.pronamespace
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('view %I.%I %s', nspname, relname, pg_get_viewdef(oid))
  FROM r WHERE relkind IN ('v', 'm')
  UNION ALL
  SELECT format('sequence %I.%I %s %s %s %s %s %s', r.nspname, r.relname,
                q.seqtypid::regtype, q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcycle)
  FROM pg_sequence q JOIN r ON r.oid = q.seqrelid
  UNION ALL
  SELECT format('type %I.%I %s %s', s.nspname, t.typname, t.typtype,
                (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                 FROM pg_enum e WHERE e.enumtypid = t.oid))
  FROM pg_type t JOIN s ON s.oid = t.typnamespace
  WHERE t.typtype IN ('e', 'd', 'r', 'm')
  UNION ALL
  SELECT format('comment %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid),
                d.description)
  FROM pg_description d
  WHERE (pg_identify_object(d.classoid, d.objoid, d.objsubid)).schema IN (SELECT nspname FROM s)
  UNION ALL
  SELECT format('policy %I.%I %I %s %s %s %s', r.nspname, r.relname, p.polname, p.polcmd,
                p.polpermissive, pg_get_expr(p.polqual, p.polrelid),
                pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pg_policy p JOIN r ON r.oid = p.polrelid
  UNION ALL
  SELECT 'extension ' || extname FROM pg_extension
) AS lines
)sql";
  return query_value(url, sql);
}

}  // namespace pgkit_test
