package ratelimit

// poolCount reports how many shared pools exist for address.
func poolCount(address string) int {
	n, _ := pools.Count(address + "\x00")
	return n
}
