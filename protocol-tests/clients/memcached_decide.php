<?php
// Rate-limit decisions with PHP's Memcached::get (libmemcached underneath; no rate-limit API).
//
//   php memcached_decide.php SERVERS text|binary COUNT KEY...
//
// SERVERS is a comma list of host:port (consistent hashing over them). Each of COUNT rounds
// gets every KEY once and prints "KEY VALUE", "KEY MISS" or "KEY ERROR reason".
if ($argc < 5) {
    fwrite(STDERR, "usage: php memcached_decide.php SERVERS text|binary COUNT KEY...\n");
    exit(2);
}
$m = new Memcached();
$m->setOption(Memcached::OPT_BINARY_PROTOCOL, $argv[2] === 'binary');
$m->setOption(Memcached::OPT_LIBKETAMA_COMPATIBLE, true);
$m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 5000);
$m->setOption(Memcached::OPT_RECV_TIMEOUT, 5000000);
$m->setOption(Memcached::OPT_SEND_TIMEOUT, 5000000);
foreach (explode(',', $argv[1]) as $server) {
    [$host, $port] = explode(':', $server);
    $m->addServer($host, (int)$port);
}
$count = (int)$argv[3];
$keys = array_slice($argv, 4);
for ($i = 0; $i < $count; $i++) {
    foreach ($keys as $key) {
        $value = $m->get($key);
        if ($m->getResultCode() === Memcached::RES_SUCCESS) {
            echo "$key $value\n";
        } elseif ($m->getResultCode() === Memcached::RES_NOTFOUND) {
            echo "$key MISS\n";
        } else {
            echo "$key ERROR " . $m->getResultMessage() . "\n";
        }
    }
}
