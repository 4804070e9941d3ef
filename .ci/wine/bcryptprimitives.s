# The entry point of a DLL that only forwards ProcessPrng (see
# bcryptprimitives.def): nothing to set up.
	.text
	.globl	DllMain
DllMain:
	movl	$1, %eax
	ret
