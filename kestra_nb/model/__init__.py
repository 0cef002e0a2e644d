"""Pure data of kestra_nb: states, flows, executions, ids and Kestra's JSON form. No I/O here."""
