package local

// Exported for the tests of package local_test.
var (
	ParseSHAXattr  = parseSHAXattr
	FormatSHAXattr = formatSHAXattr
)
