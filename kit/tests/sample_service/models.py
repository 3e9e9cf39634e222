from sqlalchemy import BigInteger, Column, MetaData, String, Table

metadata = MetaData()
widgets = Table("widgets", metadata, Column("id", BigInteger, primary_key=True), Column("name", String(50)))
