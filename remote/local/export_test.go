package local

// Exported for the tests of package local_test.
var (
	ParseSHAXattr  = parseSHAXattr
	FormatSHAXattr = formatSHAXattr
)

// StaleTemp is staleTemp, for the tests.
const StaleTemp = staleTemp
