<?php
/*
 * Lab shim for PEAR.php (the PEAR base class; pfSense's FreeBSD image ships
 * it from the devel/pear port, Debian's php-cli does not). pfSense 2.7.2 uses
 * only PEAR::loadExtension() (captiveportal.inc:39, at include time) and
 * PEAR::isError() (auth.inc:1779, captiveportal.inc:2458, notices.inc:502).
 */
class PEAR_Error {
	public $message;
	function __construct($message = '') { $this->message = $message; }
	function getMessage() { return $this->message; }
}
class PEAR {
	/* PEAR::loadExtension(): true when the extension is (or can be) loaded. */
	static function loadExtension($ext) { return extension_loaded($ext); }
	/* PEAR::isError(): whether $data is a PEAR_Error. */
	static function isError($data, $code = null) { return $data instanceof PEAR_Error; }
	/* PEAR::raiseError(): a new PEAR_Error (Net/IPv6.php:310, 372, 1002). */
	static function raiseError($message = null, $code = null) { return new PEAR_Error($message); }
}
