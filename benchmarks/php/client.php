<?php
/*
 * PHP (php-gearman, i.e. PECL gearman on libgearman) benchmark client.
 *
 *   php client.php WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION [ROUNDS [START_AT [PREFIX]]]
 *
 * Sequential workloads: "background" (doBackground N times), "normal"
 * (doNormal N times; a worker must serve FUNCTION) or "status" (jobStatus of
 * one handle N times).  Pipelined workloads: "tasks" (addTaskBackground N
 * times, then one runTasks; libgearman gives every task a generated UUID
 * unique) and "tasks-u" (the same with caller-given uniques PREFIX0,
 * PREFIX1, ...; PREFIX defaults to "u"), split into ROUNDS rounds of N/ROUNDS
 * tasks each (add them, runTasks).  START_AT (Unix time, 0 = now) makes
 * several processes start their timed section together.
 *
 * WARMUP operations run before the clock starts, so connecting and the first
 * allocations are not counted.  Only the loop is timed.  Prints one JSON
 * line: {"client", "workload", "ops", "seconds", "cpu_user", "cpu_sys", ...};
 * the pipelined workloads add the runTasks-only part ("run_seconds",
 * "run_cpu_user", "run_cpu_sys") and the Unix times of the timed section
 * ("t_start", "t_end", "late": how far past START_AT it began).
 */
if ($argc < 7 || $argc > 10) {
    fwrite(STDERR, "usage: php client.php WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION"
                   . " [ROUNDS [START_AT [PREFIX]]]\n");
    exit(2);
}
$workload = $argv[1];
$port = (int)$argv[2];
$n = (int)$argv[3];
$warmup = (int)$argv[4];
$payload = str_repeat("x", (int)$argv[5]);
$fn = $argv[6];
$rounds = $argc > 7 ? max(1, (int)$argv[7]) : 1;
$start_at = $argc > 8 ? (float)$argv[8] : 0.0;
$prefix = $argc > 9 ? $argv[9] : "u";
$extra = array();

$c = new GearmanClient();
$c->addServer("127.0.0.1", $port);
$c->setTimeout(60000);  // no call may hang the run

/* [user, system] CPU seconds used by this process so far. */
function cpu() {
    $u = getrusage();
    return array($u["ru_utime.tv_sec"] + $u["ru_utime.tv_usec"] / 1e6,
                 $u["ru_stime.tv_sec"] + $u["ru_stime.tv_usec"] / 1e6);
}

function check($c, $what) {
    if ($c->returnCode() != GEARMAN_SUCCESS) {
        fwrite(STDERR, "$what failed: " . $c->error() . "\n");
        exit(1);
    }
}

switch ($workload) {
case "background":
    for ($i = 0; $i < $warmup; $i++) { $c->doBackground($fn, $payload); }
    check($c, "doBackground");
    $c0 = cpu();
    $t0 = hrtime(true);
    for ($i = 0; $i < $n; $i++) { $h = $c->doBackground($fn, $payload); }
    $t1 = hrtime(true);
    $c1 = cpu();
    check($c, "doBackground");
    break;
case "normal":
    for ($i = 0; $i < $warmup; $i++) { $r = $c->doNormal($fn, $payload); }
    check($c, "doNormal");
    $c0 = cpu();
    $t0 = hrtime(true);
    for ($i = 0; $i < $n; $i++) { $r = $c->doNormal($fn, $payload); }
    $t1 = hrtime(true);
    $c1 = cpu();
    check($c, "doNormal");
    if ($r !== $payload) { fwrite(STDERR, "bad echo\n"); exit(1); }
    break;
case "status":
    $h = $c->doBackground($fn, $payload);
    check($c, "doBackground");
    for ($i = 0; $i < $warmup; $i++) { $c->jobStatus($h); }
    $c0 = cpu();
    $t0 = hrtime(true);
    for ($i = 0; $i < $n; $i++) { $st = $c->jobStatus($h); }
    $t1 = hrtime(true);
    $c1 = cpu();
    check($c, "jobStatus");
    if (!$st[0]) { fwrite(STDERR, "job unknown\n"); exit(1); }
    break;
case "tasks":
case "tasks-u":
    /* pipelined: per round, add N/ROUNDS background tasks (no per-task
       callback, nothing kept), then one runTasks that writes them all and
       reads every JOB_CREATED */
    $own = $workload == "tasks-u";
    for ($i = 0; $i < $warmup; $i++) {
        if ($own) { $c->addTaskBackground($fn, $payload, null, "w$prefix$i"); }
        else { $c->addTaskBackground($fn, $payload); }
    }
    if ($warmup > 0) { $c->runTasks(); check($c, "runTasks (warmup)"); }
    $per = intdiv($n, $rounds);
    $n = $per * $rounds;
    $run_ns = 0;
    $run_cpu = array(0.0, 0.0);
    if ($start_at > 0) {
        $wait = $start_at - microtime(true);
        if ($wait > 0) { usleep((int)($wait * 1e6)); }
    }
    $c0 = cpu();
    $t0 = hrtime(true);
    $e0 = microtime(true);
    for ($r = 0; $r < $rounds; $r++) {
        $hi = ($r + 1) * $per;
        if ($own) {
            for ($i = $r * $per; $i < $hi; $i++) { $c->addTaskBackground($fn, $payload, null, "$prefix$i"); }
        } else {
            for ($i = $r * $per; $i < $hi; $i++) { $c->addTaskBackground($fn, $payload); }
        }
        $rc0 = cpu();
        $ra = hrtime(true);
        $ok = $c->runTasks();
        $run_ns += hrtime(true) - $ra;
        $rc1 = cpu();
        $run_cpu[0] += $rc1[0] - $rc0[0];
        $run_cpu[1] += $rc1[1] - $rc0[1];
        if (!$ok) { fwrite(STDERR, "runTasks failed: " . $c->error() . "\n"); exit(1); }
    }
    $t1 = hrtime(true);
    $e1 = microtime(true);
    $c1 = cpu();
    check($c, "runTasks");
    $extra = array("run_seconds" => $run_ns / 1e9, "run_cpu_user" => $run_cpu[0],
                   "run_cpu_sys" => $run_cpu[1], "rounds" => $rounds, "t_start" => $e0,
                   "t_end" => $e1, "late" => $start_at > 0 ? max(0.0, $e0 - $start_at) : 0.0);
    break;
default:
    fwrite(STDERR, "unknown workload $workload\n");
    exit(2);
}

echo json_encode(array_merge(array(
    "client" => "php",
    "workload" => $workload,
    "ops" => $n,
    "seconds" => ($t1 - $t0) / 1e9,
    "cpu_user" => $c1[0] - $c0[0],
    "cpu_sys" => $c1[1] - $c0[1],
    "version" => "php " . PHP_VERSION . ", php-gearman " . phpversion("gearman")
                 . ", libgearman " . gearman_version(),
), $extra)) . "\n";
