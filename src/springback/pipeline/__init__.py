"""One module per workflow stage; each public function is what one rule's script calls."""
