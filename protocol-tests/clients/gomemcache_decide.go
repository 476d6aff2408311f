// Rate-limit decisions with gomemcache's plain Get (no rate-limit API in the client).
//
//	gomemcache_decide SERVERS COUNT KEY...
//
// SERVERS is a comma list of host:port (gomemcache picks a node per key). Each of COUNT rounds
// gets every KEY once and prints "KEY VALUE", "KEY MISS" or "KEY ERROR reason".
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: gomemcache_decide SERVERS COUNT KEY...")
		os.Exit(2)
	}
	mc := memcache.New(strings.Split(os.Args[1], ",")...)
	mc.Timeout = 5 * time.Second
	count, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad COUNT:", err)
		os.Exit(2)
	}
	for i := 0; i < count; i++ {
		for _, key := range os.Args[3:] {
			it, err := mc.Get(key)
			switch {
			case err == memcache.ErrCacheMiss:
				fmt.Println(key, "MISS")
			case err != nil:
				fmt.Println(key, "ERROR", err)
			default:
				fmt.Println(key, string(it.Value))
			}
		}
	}
}
