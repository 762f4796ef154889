-- Cron schedules: checking expressions, next times in a time zone across
-- DST, and the schedule of a process (set, change, pause, resume).
\set VERBOSITY terse
SET TimeZone = 'UTC';

-- Every field form and macro, from a fixed instant.
SELECT orch.next_runs('*/15 * * * *', 'UTC', '2026-01-01 00:07', 3);
SELECT orch.next_runs('10-50/20 9-17 * * mon-fri', 'UTC', '2026-01-02 16:55', 4);  -- Friday into Monday
SELECT orch.next_runs('0 0 L * *', 'UTC', '2028-01-15', 3);                         -- last day, leap year
SELECT orch.next_runs('0 0 29 2 *', 'UTC', '2026-01-01', 2);
SELECT orch.next_runs('0 12 1 * 7', 'UTC', '2026-03-01', 3);   -- Vixie: 1st of the month OR Sunday
SELECT orch.next_runs('30 * * * * *', 'UTC', '2026-01-01 00:00:00', 2);  -- seconds field
SELECT orch.next_runs('@every 90 seconds', 'UTC', '2026-01-01 00:00:00', 3);
SELECT orch.next_runs('@weekly', 'UTC', '2026-01-01', 2);
SELECT orch.next_runs('0 2 * JAN,jul *', 'UTC', '2026-01-31 12:00', 2);

-- DST in Berlin: 02:30 on the spring-forward day runs once, at 03:00 local.
SELECT t, t AT TIME ZONE 'Europe/Berlin' AS local
FROM orch.next_runs('30 2 * * *', 'Europe/Berlin', '2026-03-28 12:00', 3) t;
-- ... and on the fall-back day once, not twice.
SELECT t, t AT TIME ZONE 'Europe/Berlin' AS local
FROM orch.next_runs('30 2 * * *', 'Europe/Berlin', '2026-10-24 12:00', 2) t;
-- A wildcard hour keeps its rhythm through both passes of the repeated hour.
SELECT t, t AT TIME ZONE 'Europe/Berlin' AS local
FROM orch.next_runs('*/30 * * * *', 'Europe/Berlin', '2026-10-24 23:45', 5) t;
-- New York springs forward at 02:00 too.
SELECT t, t AT TIME ZONE 'America/New_York' AS local
FROM orch.next_runs('30 2 * * *', 'America/New_York', '2026-03-07 12:00', 2) t;

-- Invalid expressions and zones say which field is wrong and why.
SELECT orch.next_runs('61 * * * *');
SELECT orch.next_runs('* * * *');
SELECT orch.next_runs('*/0 * * * *');
SELECT orch.next_runs('@fortnightly');
SELECT orch.next_runs('0 0 * * *', 'Mars/Olympus_Mons');

-- A process with a schedule.
SELECT name FROM orch.define_process_type('tick', '[{"name": "t", "command": ["/bin/true"]}]');
SELECT id, schedule, timezone, overlap_policy, misfire_policy, is_active,
       next_run_at = (SELECT orch.next_runs('0 2 * * *', 'Europe/Berlin', now(), 1)) AS next_is_2am_berlin
FROM orch.create_process('nightly', 'tick', schedule => '0 2 * * *', timezone => 'Europe/Berlin');
SELECT orch.create_process('bad1', 'tick', schedule => '61 * * * *');
SELECT orch.create_process('bad2', 'tick', schedule => '0 0 * * *', timezone => 'Nowhere/City');
SELECT orch.create_process('bad3', 'tick', schedule => '0 0 * * *', overlap => 'sometimes');
SELECT orch.create_process('bad4', 'tick', schedule => '0 0 * * *', misfire => 'later');
SELECT count(*) FROM orch.processes WHERE id LIKE 'bad%';

-- orch.timezone is the default zone.
SET orch.timezone = 'Asia/Tokyo';
SELECT timezone FROM orch.create_process('tokyo', 'tick', schedule => '@daily');
RESET orch.timezone;

-- Pause turns the schedule off; resume turns it on; a change takes effect at once.
SELECT is_active, next_run_at IS NULL AS no_next FROM orch.pause('nightly');
SELECT is_active, next_run_at > now() AS next_ahead FROM orch.resume('nightly');
SELECT schedule, overlap_policy, next_run_at = (SELECT orch.next_runs('15 3 * * *', 'Europe/Berlin', now(), 1)) AS moved
FROM orch.set_schedule('nightly', '15 3 * * *', 'Europe/Berlin', overlap => 'queue');
SELECT orch.set_schedule('nightly', 'whenever');
SELECT schedule, next_run_at FROM orch.set_schedule('nightly', NULL);
SELECT orch.pause('nope');
SELECT kind, detail FROM orch.events WHERE process_id = 'nightly' ORDER BY id;

SELECT orch.delete_process(id) FROM orch.processes ORDER BY id;
SELECT orch.drop_process_type('tick');
