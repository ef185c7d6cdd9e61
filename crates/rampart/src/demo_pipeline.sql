-- The first seed pipeline (risingwave-siem-pipeline.txt, in crates/testkit/fixtures/seeds), with the Kafka
-- sources replaced by the built-in generator and the alert sinks writing JSON lines.
CREATE SOURCE firewall_logs (
    event_time        TIMESTAMPTZ,
    src_ip            VARCHAR,
    dst_ip            VARCHAR,
    src_port          INT,
    dst_port          INT,
    protocol          VARCHAR,
    bytes_transferred BIGINT,
    action            VARCHAR,
    rule_id           VARCHAR
)
WITH (connector = 'generator', kind = 'firewall', rate = '{RATE}', seed = '1')
FORMAT PLAIN ENCODE JSON;

CREATE SOURCE auth_events (
    event_time   TIMESTAMPTZ,
    user_id      VARCHAR,
    source_ip    VARCHAR,
    country_code VARCHAR,
    result       VARCHAR,
    app_name     VARCHAR,
    session_id   VARCHAR
)
WITH (connector = 'generator', kind = 'auth', rate = '{RATE}', seed = '2')
FORMAT PLAIN ENCODE JSON;

CREATE SOURCE endpoint_events (
    event_time   TIMESTAMPTZ,
    host_id      VARCHAR,
    process_name VARCHAR,
    parent_pid   INT,
    child_pid    INT,
    command_line VARCHAR,
    user_name    VARCHAR,
    sha256_hash  VARCHAR
)
WITH (connector = 'generator', kind = 'endpoint', rate = '{RATE}', seed = '3')
FORMAT PLAIN ENCODE JSON;

CREATE TABLE asset_taxonomy (host_id VARCHAR, asset_tier VARCHAR, owner VARCHAR);
COPY asset_taxonomy FROM '{ASSETS_CSV}' WITH (FORMAT csv, HEADER true);
CREATE TABLE geo_ip_reference (ip_range_start BIGINT, ip_range_end BIGINT, region VARCHAR, country_code VARCHAR);
COPY geo_ip_reference FROM '{GEO_CSV}' WITH (FORMAT csv, HEADER true);

CREATE MATERIALIZED VIEW normalized_events AS
    SELECT event_time, 'network' AS event_category, 'firewall' AS event_source, rule_id AS event_id,
           src_ip AS actor_ip, NULL AS actor_user, dst_ip AS target_resource,
           CAST(dst_port AS VARCHAR) AS target_detail, action AS outcome,
           bytes_transferred AS magnitude, NULL AS raw_command
    FROM firewall_logs
    UNION ALL
    SELECT event_time, 'authentication' AS event_category, 'identity_provider' AS event_source,
           session_id AS event_id, source_ip AS actor_ip, user_id AS actor_user,
           app_name AS target_resource, country_code AS target_detail, result AS outcome,
           NULL AS magnitude, NULL AS raw_command
    FROM auth_events
    UNION ALL
    SELECT event_time, 'process_execution' AS event_category, 'edr_agent' AS event_source,
           sha256_hash AS event_id, NULL AS actor_ip, user_name AS actor_user,
           host_id AS target_resource, process_name AS target_detail, 'executed' AS outcome,
           NULL AS magnitude, command_line AS raw_command
    FROM endpoint_events;

CREATE MATERIALIZED VIEW enriched_events AS
SELECT
    ne.*,
    COALESCE(at.asset_tier, 'unknown')   AS asset_tier,
    COALESCE(gi.region, 'unknown')       AS geo_region
FROM normalized_events ne
LEFT JOIN asset_taxonomy  at ON ne.target_resource = at.host_id
LEFT JOIN geo_ip_reference gi ON inet_aton(ne.actor_ip)
                                  BETWEEN gi.ip_range_start AND gi.ip_range_end;

CREATE MATERIALIZED VIEW alert_brute_force AS
SELECT window_start, window_end, actor_ip, actor_user, COUNT(*) AS failure_count,
       'brute_force' AS rule_name, 'high' AS severity
FROM TUMBLE(enriched_events, event_time, INTERVAL '5 minutes')
WHERE event_category = 'authentication' AND outcome = 'failure'
GROUP BY window_start, window_end, actor_ip, actor_user
HAVING COUNT(*) > 10;

CREATE MATERIALIZED VIEW alert_impossible_travel AS
SELECT a.actor_user, a.actor_ip AS ip_first, b.actor_ip AS ip_second,
       a.geo_region AS region_first, b.geo_region AS region_second,
       a.event_time AS time_first, b.event_time AS time_second,
       'impossible_travel' AS rule_name, 'critical' AS severity
FROM enriched_events a
JOIN enriched_events b
  ON  a.actor_user   = b.actor_user
  AND a.event_category = 'authentication'
  AND b.event_category = 'authentication'
  AND a.outcome      = 'success'
  AND b.outcome      = 'success'
  AND a.geo_region  <> b.geo_region
  AND b.event_time   > a.event_time
  AND b.event_time   < a.event_time + INTERVAL '30 minutes';

CREATE MATERIALIZED VIEW alert_suspicious_process AS
SELECT event_time, target_resource AS host_id, actor_user, raw_command, asset_tier,
       'encoded_powershell' AS rule_name, 'high' AS severity
FROM enriched_events
WHERE event_category = 'process_execution'
  AND asset_tier     = 'tier_1'
  AND target_detail  ILIKE '%powershell%'
  AND raw_command    ILIKE '%-EncodedCommand%';

CREATE MATERIALIZED VIEW alert_summary AS
SELECT window_start, window_end, rule_name, severity, COUNT(*) AS alert_count
FROM TUMBLE(
    (
      -- The seed selects event_time here, a column alert_brute_force does not have
      -- (RisingWave rejects it too); the window end is the closest instant.
      SELECT window_end AS event_time, rule_name, severity FROM alert_brute_force
      UNION ALL
      SELECT time_second AS event_time, rule_name, severity FROM alert_impossible_travel
      UNION ALL
      SELECT event_time, rule_name, severity FROM alert_suspicious_process
    ),
    event_time,
    INTERVAL '1 minute'
)
GROUP BY window_start, window_end, rule_name, severity;

CREATE SINK soar_alerts_sink
FROM (
    SELECT NOW() AS alert_fired_at, rule_name, severity, actor_ip, actor_user,
           NULL AS target_resource, failure_count AS signal_value, window_start, window_end
    FROM alert_brute_force
    WHERE severity IN ('high', 'critical')
    UNION ALL
    SELECT NOW() AS alert_fired_at, rule_name, severity, ip_first AS actor_ip, actor_user,
           NULL AS target_resource, NULL AS signal_value, time_first AS window_start, time_second AS window_end
    FROM alert_impossible_travel
    WHERE severity = 'critical'
)
WITH (connector = 'file', path = '{ALERTS_FILE}')
FORMAT PLAIN ENCODE JSON;
