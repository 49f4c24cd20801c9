<?php
/*
 * PHP (php-gearman, i.e. PECL gearman on libgearman) benchmark client.
 *
 *   php client.php WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION
 *
 * WORKLOAD is "background" (doBackground N times), "normal" (doNormal N
 * times; a worker must serve FUNCTION) or "status" (jobStatus of one handle
 * N times).  WARMUP operations run before the clock starts, so connecting
 * and the first allocations are not counted.  Only the loop is timed.
 * Prints one JSON line: {"client", "workload", "ops", "seconds", ...}.
 */
if ($argc != 7) {
    fwrite(STDERR, "usage: php client.php WORKLOAD PORT N WARMUP PAYLOAD_BYTES FUNCTION\n");
    exit(2);
}
$workload = $argv[1];
$port = (int)$argv[2];
$n = (int)$argv[3];
$warmup = (int)$argv[4];
$payload = str_repeat("x", (int)$argv[5]);
$fn = $argv[6];

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
default:
    fwrite(STDERR, "unknown workload $workload\n");
    exit(2);
}

echo json_encode(array(
    "client" => "php",
    "workload" => $workload,
    "ops" => $n,
    "seconds" => ($t1 - $t0) / 1e9,
    "cpu_user" => $c1[0] - $c0[0],
    "cpu_sys" => $c1[1] - $c0[1],
    "version" => "php " . PHP_VERSION . ", php-gearman " . phpversion("gearman")
                 . ", libgearman " . gearman_version(),
)) . "\n";
