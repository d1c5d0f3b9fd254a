package testenv

import "syscall"

// childSysProcAttr makes a started server die with the test binary, even
// when the test binary is killed and no Cleanup runs. (Linux sends the
// signal when the thread that started the child exits; Go keeps its threads
// for the life of the process unless a goroutine exits while locked to one,
// which test code that starts servers does not do.)
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
