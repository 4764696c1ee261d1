"""Repository tools that are not part of the installed ``aiornot`` package (see ``make data``)."""
