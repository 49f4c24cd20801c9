<?php
/*
 * PECL GearmanWorker driven by tests/test_interop.py against a cygearman client.
 *
 *   GEARMAN_PORT=N php worker.php PREFIX RECORD_FILE
 *
 * Registers PREFIX.reverse, PREFIX.chunks, PREFIX.unique, PREFIX.record
 * (appends the workload and a newline to RECORD_FILE), PREFIX.exception,
 * PREFIX.throw and PREFIX.fail, then works until it has been idle for
 * 30 seconds (the test kills it sooner).  A callback that throws makes PECL
 * send WORK_EXCEPTION and rethrow out of work(); the loop catches it so the
 * worker survives, and logs it on stderr.
 */
$prefix = $argv[1];
$record_file = $argv[2];
$worker = new GearmanWorker();
$worker->addServer("127.0.0.1", (int)getenv("GEARMAN_PORT"));
$worker->setTimeout(30000);

$worker->addFunction("$prefix.reverse", function ($job) {
    return strrev($job->workload());
});
$worker->addFunction("$prefix.chunks", function ($job) {
    $job->sendData("one,");
    $job->sendStatus(1, 3);
    $job->sendData("two,");
    $job->sendStatus(2, 3);
    return "three";
});
$worker->addFunction("$prefix.unique", function ($job) {
    return $job->unique() . "|" . $job->handle() . "|" . $job->functionName();
});
$worker->addFunction("$prefix.record", function ($job) use ($record_file) {
    file_put_contents($record_file, $job->workload() . "\n", FILE_APPEND);
    return "recorded";
});
$worker->addFunction("$prefix.exception", function ($job) {
    $job->sendException("php says: " . $job->workload());
});
$worker->addFunction("$prefix.throw", function ($job) {
    throw new Exception("thrown in PHP");
});
$worker->addFunction("$prefix.fail", function ($job) {
    $job->sendFail();
});

for (;;) {
    try {
        if (!$worker->work() && $worker->returnCode() == GEARMAN_TIMEOUT)
            break;
    } catch (Exception $e) {
        fwrite(STDERR, "caught: " . $e->getMessage() . "\n");
    }
}
