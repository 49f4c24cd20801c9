<?php
/*
 * PECL GearmanClient driven by tests/test_interop.py against a cygearman worker.
 *
 *   GEARMAN_PORT=N php client.php do FUNCTION BASE64_WORKLOAD [UNIQUE]
 *   GEARMAN_PORT=N php client.php background FUNCTION WORKLOAD
 *   GEARMAN_PORT=N php client.php status HANDLE
 *   GEARMAN_PORT=N php client.php tasks FUNCTION WORKLOAD [FUNCTION WORKLOAD ...]
 *
 * Prints one JSON object on stdout.  Binary payloads travel base64-encoded so
 * that the comparison in Python is byte-exact.  Every call is bounded by
 * setTimeout so that no run can hang.
 */
$mode = $argv[1];
$client = new GearmanClient();
$client->addServer("127.0.0.1", (int)getenv("GEARMAN_PORT"));
$client->setTimeout(20000);
$out = array();

switch ($mode) {
case "do":  // doNormal(FUNCTION, base64 WORKLOAD [, UNIQUE])
    $unique = isset($argv[4]) ? $argv[4] : null;
    $result = $client->doNormal($argv[2], base64_decode($argv[3]), $unique);
    $out["result"] = base64_encode($result);
    $out["rc"] = $client->returnCode();
    break;

case "background":  // doBackground(FUNCTION, WORKLOAD)
    $out["handle"] = $client->doBackground($argv[2], $argv[3]);
    $out["rc"] = $client->returnCode();
    break;

case "status":  // one jobStatus(HANDLE)
    $out["status"] = $client->jobStatus($argv[2]);
    $out["rc"] = $client->returnCode();
    break;

case "tasks":  // addTask for each FUNCTION WORKLOAD pair (context "t<i>"), then runTasks
    $events = array();
    $client->setCompleteCallback(function ($task, $ctx) use (&$events) {
        $events[] = array("complete", $ctx, $task->data());
    });
    $client->setDataCallback(function ($task, $ctx) use (&$events) {
        $events[] = array("data", $ctx, $task->data());
    });
    $client->setStatusCallback(function ($task, $ctx) use (&$events) {
        $events[] = array("status", $ctx, $task->taskNumerator(), $task->taskDenominator());
    });
    $client->setFailCallback(function ($task, $ctx) use (&$events) {
        $events[] = array("fail", $ctx);
    });
    $client->setExceptionCallback(function ($task, $ctx) use (&$events) {
        $events[] = array("exception", $ctx, $task->data());
    });
    for ($i = 0; 2 * $i + 3 < $argc; $i++)
        $client->addTask($argv[2 * $i + 2], $argv[2 * $i + 3], "t$i");
    $out["ok"] = $client->runTasks();
    $out["rc"] = $client->returnCode();
    $out["events"] = $events;
    break;

default:
    fwrite(STDERR, "unknown mode $mode\n");
    exit(2);
}
echo json_encode($out), "\n";
