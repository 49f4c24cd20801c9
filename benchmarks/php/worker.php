<?php
/*
 * The one fixed worker of the "normal" workload: php-gearman (libgearman),
 * answering FUNCTION with its workload unchanged, so that every client is
 * measured against the same worker.
 *
 *   php worker.php PORT FUNCTION
 *
 * Runs until killed (the orchestrator sends SIGTERM, then SIGKILL).
 */
$w = new GearmanWorker();
$w->addServer("127.0.0.1", (int)$argv[1]);
$w->addFunction($argv[2], function ($job) { return $job->workload(); });
while ($w->work() || $w->returnCode() == GEARMAN_IO_WAIT
       || $w->returnCode() == GEARMAN_NO_JOBS) {
}
fwrite(STDERR, "worker stopped: " . $w->error() . "\n");
exit(1);
