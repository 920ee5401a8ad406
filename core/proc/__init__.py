"""Process and terminal plumbing, under the kernel's plugin contract: a call in a child process
under another backend (``child``), the ``--processes N`` launcher (``launch``), the format both hand
their children (``request``) and the children's side (``worker``), the native-log filter on stderr
(``quiet``) and the terminal's progress bars (``progress``). It imports no wing."""
