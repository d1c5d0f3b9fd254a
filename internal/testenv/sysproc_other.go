//go:build !linux

package testenv

import "syscall"

// childSysProcAttr: only Linux can tie a child's life to its parent; on other
// systems the server is stopped by Cleanup or StopShared alone.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
