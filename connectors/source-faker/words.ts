// Word lists for plausible-looking fake records. Sizes are arbitrary; changing them changes
// every generated record, so treat them as part of the output format.

export const FIRST_NAMES = [
  'Ada', 'Alan', 'Amara', 'Andrea', 'Aiko', 'Bruno', 'Carla', 'Chen', 'Dmitri', 'Elena',
  'Farah', 'Felix', 'Grace', 'Hugo', 'Ines', 'Ivan', 'Jamal', 'Jana', 'Kenji', 'Lara',
  'Leon', 'Maya', 'Mateo', 'Nadia', 'Nils', 'Olga', 'Omar', 'Priya', 'Rafael', 'Rosa',
  'Sami', 'Sofia', 'Tariq', 'Tomas', 'Uma', 'Victor', 'Wanjiru', 'Xavier', 'Yara', 'Zoe',
] as const;

export const LAST_NAMES = [
  'Almeida', 'Andersson', 'Banerjee', 'Bianchi', 'Costa', 'Dubois', 'Eriksen', 'Fischer',
  'Garcia', 'Haddad', 'Hansen', 'Ito', 'Jansen', 'Kowalski', 'Kuznetsova', 'Larsen',
  'Lopez', 'Mbeki', 'Moreau', 'Nakamura', 'Novak', 'Okafor', 'Olsen', 'Petrov', 'Quinn',
  'Rossi', 'Santos', 'Schmidt', 'Silva', 'Tanaka', 'Umarov', 'Varga', 'Wagner', 'Yilmaz',
] as const;

export const TITLES = [
  'Account Manager', 'Backend Engineer', 'Chief Financial Officer', 'Customer Success Lead',
  'Data Analyst', 'Data Engineer', 'Designer', 'Engineering Manager', 'Frontend Engineer',
  'Head of Marketing', 'HR Partner', 'Product Manager', 'QA Engineer', 'Sales Director',
  'Site Reliability Engineer', 'Support Specialist', 'Technical Writer', 'VP of Engineering',
] as const;

export const STREETS = [
  'Acacia Avenue', 'Baker Street', 'Canal Road', 'Cedar Lane', 'Church Street', 'Elm Street',
  'Harbour Drive', 'High Street', 'King Street', 'Lake View', 'Maple Avenue', 'Market Square',
  'Mill Road', 'Oak Lane', 'Park Avenue', 'Queen Street', 'River Walk', 'Station Road',
] as const;

export const PLACES: readonly (readonly [city: string, country: string])[] = [
  ['Amsterdam', 'Netherlands'], ['Athens', 'Greece'], ['Bangalore', 'India'], ['Berlin', 'Germany'],
  ['Bogota', 'Colombia'], ['Cairo', 'Egypt'], ['Cape Town', 'South Africa'], ['Dublin', 'Ireland'],
  ['Helsinki', 'Finland'], ['Istanbul', 'Turkey'], ['Lagos', 'Nigeria'], ['Lima', 'Peru'],
  ['Lisbon', 'Portugal'], ['Madrid', 'Spain'], ['Melbourne', 'Australia'], ['Montreal', 'Canada'],
  ['Nairobi', 'Kenya'], ['Osaka', 'Japan'], ['Prague', 'Czechia'], ['Seoul', 'South Korea'],
  ['Stockholm', 'Sweden'], ['Toronto', 'Canada'], ['Vienna', 'Austria'], ['Warsaw', 'Poland'],
];

export const PRODUCTS = [
  'Analog Watch', 'Backpack', 'Bluetooth Speaker', 'Camping Stove', 'Ceramic Mug', 'Desk Lamp',
  'Espresso Machine', 'Fountain Pen', 'Hiking Boots', 'Mechanical Keyboard', 'Noise-Cancelling Headphones',
  'Notebook', 'Rain Jacket', 'Running Shoes', 'Standing Desk', 'Sunglasses', 'Tea Kettle',
  'Travel Pillow', 'Water Bottle', 'Wireless Mouse', 'Yoga Mat',
] as const;
