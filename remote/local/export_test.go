package local

// Exported for the tests of package local_test.
var (
	ParseSHAXattr  = parseSHAXattr
	FormatSHAXattr = formatSHAXattr
)

// StaleTemp is staleTemp, for the tests.
const StaleTemp = staleTemp

// For the tests of the temporary files' rules.
var (
	IsTempName = isTempName
	StaleSince = staleSince
)
