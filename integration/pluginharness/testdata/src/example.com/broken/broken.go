// Package broken imports a package that does not exist, so that importing it fails.
package broken

import "example.com/doesnotexist"

// Value uses the missing package.
var Value = doesnotexist.Value
