"""leadlex-nb: delete LeadLex CRM contacts in bulk, safely and fast, from pandas.

Importing the package registers the ``leadlex`` accessor on DataFrame and Series.
"""

__version__ = "0.1.0"
