"""Reference lists the simulators draw from: countries, provinces, categories, statuses."""

from __future__ import annotations

# Where client companies are registered: mostly Argentina, then neighbours, then a tail.
COMPANY_COUNTRIES: dict[str, float] = {
    "AR": 0.84, "UY": 0.04, "CL": 0.04, "PY": 0.02, "BR": 0.02, "BO": 0.01,
    "PE": 0.01, "MX": 0.005, "ES": 0.005, "US": 0.005, "CO": 0.005,
}  # fmt: skip

# Countries a travelling user sometimes logs in from.
TRAVEL_COUNTRIES: dict[str, float] = {
    "BR": 0.25, "CL": 0.2, "UY": 0.2, "US": 0.15, "ES": 0.1, "DE": 0.05, "IT": 0.05,
}  # fmt: skip

AR_PROVINCES: dict[str, tuple[str, ...]] = {
    "Buenos Aires": ("La Plata", "Mar del Plata", "Bahía Blanca", "Tandil", "Quilmes"),
    "Ciudad Autónoma de Buenos Aires": ("CABA",),
    "Córdoba": ("Córdoba", "Río Cuarto", "Villa María"),
    "Santa Fe": ("Rosario", "Santa Fe", "Rafaela"),
    "Mendoza": ("Mendoza", "San Rafael"),
    "Tucumán": ("San Miguel de Tucumán",),
    "Salta": ("Salta",),
    "Neuquén": ("Neuquén",),
    "Entre Ríos": ("Paraná", "Concordia"),
    "Chubut": ("Comodoro Rivadavia", "Trelew"),
}
AR_PROVINCE_WEIGHTS: tuple[float, ...] = (0.33, 0.25, 0.12, 0.1, 0.05, 0.04, 0.03, 0.03, 0.03, 0.02)

FOREIGN_CITIES: dict[str, tuple[str, str]] = {
    "UY": ("Montevideo", "Montevideo"), "CL": ("Región Metropolitana", "Santiago"),
    "PY": ("Central", "Asunción"), "BR": ("São Paulo", "São Paulo"),
    "BO": ("La Paz", "La Paz"), "PE": ("Lima", "Lima"), "MX": ("CDMX", "Ciudad de México"),
    "ES": ("Madrid", "Madrid"), "US": ("Florida", "Miami"), "CO": ("Bogotá D.C.", "Bogotá"),
}  # fmt: skip

INDUSTRIES: tuple[str, ...] = (
    "Retail", "Gastronomía", "Construcción", "Salud", "Agro", "Tecnología",
    "Logística", "Educación", "Industria", "Hotelería",
)  # fmt: skip

# category -> (sku code, nouns, median price in ARS)
PRODUCT_CATEGORIES: dict[str, tuple[str, tuple[str, ...], float]] = {
    "Limpieza": ("LIM", ("Detergente", "Lavandina", "Desengrasante", "Trapo de piso"), 4_500),
    "Librería": ("LIB", ("Resma A4", "Cuaderno", "Bolígrafo x50", "Carpeta"), 6_000),
    "Almacén": ("ALM", ("Yerba mate", "Café molido", "Azúcar", "Aceite de girasol"), 3_800),
    "Bebidas": ("BEB", ("Agua mineral", "Gaseosa", "Jugo", "Agua saborizada"), 2_900),
    "Tecnología": ("TEC", ("Mouse", "Teclado", 'Monitor 24"', "Notebook", "Auriculares"), 95_000),
    "Ferretería": ("FER", ("Taladro", "Tornillos x100", "Cinta métrica", "Llave inglesa"), 18_000),
    "Descartables": ("DES", ("Vasos x100", "Servilletas", "Bandejas", "Guantes de nitrilo"), 5_200),
    "Electricidad": ("ELE", ("Cable 2.5mm", "Lámpara LED", "Zapatilla", "Disyuntor"), 12_000),
    "Seguridad": (
        "SEG",
        ("Casco", "Chaleco reflectivo", "Botín de seguridad", "Matafuego"),
        35_000,
    ),
    "Mobiliario": ("MOB", ("Silla ergonómica", "Escritorio", "Estantería", "Archivero"), 150_000),
}
BRANDS: tuple[str, ...] = (
    "Ayudín", "Magistral", "Rivadavia", "Taragüí", "La Virginia", "Villavicencio", "Logitech",
    "Samsung", "Philips", "Bosch", "Stanley", "3M", "Ledesma", "Cabrales", "Genérica",
)  # fmt: skip
UNITS: tuple[str, ...] = ("unidad", "caja", "pack", "kg", "litro", "metro")

INVALID_STATUSES: tuple[str, ...] = ("pending_review", "borrado", "unknown", "", "entregado")
DOCUMENT_TYPES: dict[str, float] = {
    "DNI": 0.93,
    "PASAPORTE": 0.03,
    "LC": 0.02,
    "LE": 0.01,
    "CI": 0.01,
}
USER_ROLES: dict[str, float] = {"buyer": 0.7, "admin": 0.15, "viewer": 0.15}
