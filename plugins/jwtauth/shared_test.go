package jwtauth

// sharedUsers reports how many middlewares use the shared cache of issuer.
func sharedUsers(issuer string) int {
	_, users := keySets.Count(issuer + "\x00")
	return users
}
